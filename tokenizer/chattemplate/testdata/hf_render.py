#!/usr/bin/env python3
"""Renders chat templates exactly as Hugging Face transformers does.

It is the oracle of golem's chat-template tests: the environment is
transformers' _compile_jinja_template (an ImmutableSandboxedEnvironment with
trim_blocks, lstrip_blocks and loop controls, its tojson filter,
raise_exception and strftime_now), and the variables are the ones
apply_chat_template passes (messages, tools, documents,
add_generation_prompt, the special tokens, extra keyword arguments).

Input (stdin): a JSON list of cases {"template", "messages", "tools",
"add_generation_prompt", "bos_token", "eos_token", "vars", "date"}.
Output (stdout): a JSON list, one {"out": TEXT} or {"error": MESSAGE} a case.
"""
import functools
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class AssistantTracker(Extension):
    # transformers' {% generation %} ... {% endgeneration %} block; rendering
    # only needs its body.
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


@functools.lru_cache(maxsize=None)
def compile_template(src, date):
    now = datetime.strptime(date, "%Y-%m-%d")
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return now.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(src)


def render(case):
    tmpl = compile_template(case["template"], case.get("date") or "2026-12-06")
    kwargs = dict(case.get("vars") or {})
    for k in ("bos_token", "eos_token"):
        if case.get(k) is not None:
            kwargs[k] = case[k]
    return tmpl.render(
        messages=case["messages"],
        tools=case.get("tools"),
        documents=None,
        add_generation_prompt=bool(case.get("add_generation_prompt")),
        **kwargs,
    )


def main():
    out = []
    for case in json.load(sys.stdin):
        try:
            out.append({"out": render(case)})
        except Exception as e:  # the template's error, as transformers raises it
            out.append({"error": "%s: %s" % (type(e).__name__, e)})
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
