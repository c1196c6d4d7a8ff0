// A tiny Markdown subset for what models and admins write: paragraphs,
// fenced code blocks, inline code, **bold**, *italic*, - and 1. lists, and
// [links](https://...) to http(s) addresses only. It builds DOM nodes with
// createElement and text nodes: no text is ever parsed as HTML, so markup
// in the input shows as text and only the element types in MD_TAGS appear.
"use strict";

// MD_TAGS are the only elements renderMarkdown makes.
const MD_TAGS = ["P", "PRE", "CODE", "STRONG", "EM", "UL", "OL", "LI", "A", "BR"];

// renderMarkdown returns a DocumentFragment of text's blocks.
function renderMarkdown(text) {
  const out = document.createDocumentFragment();
  const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
  let para = [];
  let list = null; // { el, ordered }
  const flushPara = () => {
    if (para.length) out.append(mdBlock("p", para.join("\n")));
    para = [];
  };
  const endList = () => { list = null; };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = /^\s*(```|~~~)/.exec(line);
    if (fence) {
      flushPara(); endList();
      const code = [];
      for (i++; i < lines.length && !lines[i].trimStart().startsWith(fence[1]); i++) code.push(lines[i]);
      const pre = document.createElement("pre");
      const c = document.createElement("code");
      c.textContent = code.join("\n");
      pre.append(c);
      out.append(pre);
      continue;
    }
    const item = /^\s*(?:([-*+])|(\d{1,9})[.)])\s+(.*)$/.exec(line);
    if (item) {
      flushPara();
      const ordered = !item[1];
      if (!list || list.ordered !== ordered) {
        list = { el: document.createElement(ordered ? "ol" : "ul"), ordered };
        out.append(list.el);
      }
      list.el.append(mdBlock("li", item[3]));
      continue;
    }
    if (line.trim() === "") {
      flushPara(); endList();
      continue;
    }
    if (list && /^\s+\S/.test(line)) { // a list item's continuation
      list.el.lastChild.append(document.createElement("br"), ...mdInline(line.trim()));
      continue;
    }
    endList();
    para.push(line);
  }
  flushPara();
  return out;
}

// mdBlock makes a block element of inline Markdown; newlines become <br>.
function mdBlock(tag, text) {
  const e = document.createElement(tag);
  text.split("\n").forEach((l, i) => {
    if (i) e.append(document.createElement("br"));
    e.append(...mdInline(l));
  });
  return e;
}

// mdSafeURL returns url when it is an absolute http(s) address, else "".
function mdSafeURL(url) {
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : "";
  } catch (_) {
    return "";
  }
}

// mdInline returns the nodes of one line: `code`, **bold**, *italic* or
// _italic_, and [text](http(s) url); everything else is text.
function mdInline(s) {
  const nodes = [];
  const re = /`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|\b_([^_]+)_\b|\[([^\]]+)\]\(([^)\s]+)\)/g;
  let last = 0;
  let m;
  while ((m = re.exec(s)) !== null) {
    if (m.index > last) nodes.push(document.createTextNode(s.slice(last, m.index)));
    last = re.lastIndex;
    let e;
    if (m[1] !== undefined) {
      e = document.createElement("code");
      e.textContent = m[1];
    } else if (m[2] !== undefined) {
      e = document.createElement("strong");
      e.append(...mdInline(m[2]));
    } else if (m[3] !== undefined || m[4] !== undefined) {
      e = document.createElement("em");
      e.append(...mdInline(m[3] !== undefined ? m[3] : m[4]));
    } else {
      const href = mdSafeURL(m[6]);
      if (!href) { // not http(s): the link stays text
        nodes.push(document.createTextNode(m[0]));
        continue;
      }
      e = document.createElement("a");
      e.href = href;
      e.rel = "noopener noreferrer nofollow";
      e.target = "_blank";
      e.textContent = m[5];
    }
    nodes.push(e);
  }
  if (last < s.length) nodes.push(document.createTextNode(s.slice(last)));
  return nodes;
}
