"""An independent reference of lm-evaluation-harness's multiple-choice
definitions, to check golem eval mc against, item by item.

    python3 lmeval_ref.py CASES.json

CASES.json is a list of runs, each {"task", "data", "pool", "shots",
"seed", "limit", "details"}: task is arc, openbookqa, hellaswag or cmmlu;
data the evaluated split as golem read it (ARC-format JSON lines,
llama.cpp's HellaSwag text file, a CMMLU CSV file or folder); pool the
few-shot split ("-" for none); details golem's per-question JSON lines
(context, continuations, token log-probabilities, picks). The script builds every request itself from the
data, as the task YAMLs of lm-eval define them (arc_easy 1.0, openbookqa 1.0,
hellaswag 1.0, cmmlu 0.0: doc_to_text, doc_to_choice, target delimiter " ",
few-shot delimiter "\n\n", the description, the default sampler's
random.Random(SEED).sample per document in order, drawing one more and
dropping the document when the pool is the evaluated split, or CMMLU's
first_n from the same subject's dev split), checks golem's contexts and
continuations are the same strings, and computes acc, acc_norm (summed
log-likelihood / len(choice) in characters) and acc_bytes (/ its UTF-8
bytes) from golem's token log-probabilities, as ConfigurableTask's
process_results does. It prints a JSON list, per run the metrics and the
disagreements.
Needs only the Python standard library.
"""
import bz2
import csv
import glob
import json
import os
import random
import re
import sys

CMMLU_SUBJECTS = {
    "agronomy": "农学", "anatomy": "解剖学", "ancient_chinese": "古汉语", "arts": "艺术学", "astronomy": "天文学",
    "business_ethics": "商业伦理", "chinese_civil_service_exam": "中国公务员考试", "chinese_driving_rule": "中国驾驶规则",
    "chinese_food_culture": "中国饮食文化", "chinese_foreign_policy": "中国外交政策", "chinese_history": "中国历史",
    "chinese_literature": "中国文学", "chinese_teacher_qualification": "中国教师资格", "clinical_knowledge": "临床知识",
    "college_actuarial_science": "大学精算学", "college_education": "大学教育学", "college_engineering_hydrology": "大学工程水文学",
    "college_law": "大学法律", "college_mathematics": "大学数学", "college_medical_statistics": "大学医学统计",
    "college_medicine": "大学医学", "computer_science": "计算机科学", "computer_security": "计算机安全",
    "conceptual_physics": "概念物理学", "construction_project_management": "建设工程管理", "economics": "经济学",
    "education": "教育学", "electrical_engineering": "电气工程", "elementary_chinese": "小学语文",
    "elementary_commonsense": "小学常识", "elementary_information_and_technology": "小学信息技术",
    "elementary_mathematics": "初等数学", "ethnology": "民族学", "food_science": "食品科学", "genetics": "遗传学",
    "global_facts": "全球事实", "high_school_biology": "高中生物", "high_school_chemistry": "高中化学",
    "high_school_geography": "高中地理", "high_school_mathematics": "高中数学", "high_school_physics": "高中物理学",
    "high_school_politics": "高中政治", "human_sexuality": "人类性行为", "international_law": "国际法学",
    "journalism": "新闻学", "jurisprudence": "法理学", "legal_and_moral_basis": "法律与道德基础", "logical": "逻辑学",
    "machine_learning": "机器学习", "management": "管理学", "marketing": "市场营销", "marxist_theory": "马克思主义理论",
    "modern_chinese": "现代汉语", "nutrition": "营养学", "philosophy": "哲学", "professional_accounting": "专业会计",
    "professional_law": "专业法学", "professional_medicine": "专业医学", "professional_psychology": "专业心理学",
    "public_relations": "公共关系", "security_study": "安全研究", "sociology": "社会学", "sports_science": "体育学",
    "traditional_chinese_medicine": "中医中药", "virology": "病毒学", "world_history": "世界历史", "world_religions": "世界宗教",
}


def hellaswag_preprocess(text):  # lm_eval/tasks/hellaswag/utils.py
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def read_docs(task, path):
    """The documents: dicts with text (doc_to_text), choices, gold, subject, description."""
    docs = []
    if task in ("arc", "openbookqa"):
        for line in open(path, encoding="utf-8"):
            if not line.strip():
                continue
            r = json.loads(line)
            q = r["question"]
            labels = [c["label"] for c in q["choices"]]
            key = r["answerKey"].lstrip() if task == "openbookqa" else r["answerKey"]
            text = q["stem"] if task == "openbookqa" else "Question: " + q["stem"] + "\nAnswer:"
            docs.append({"text": text, "choices": [c["text"] for c in q["choices"]], "gold": labels.index(key),
                         "subject": "", "description": ""})
    elif task == "hellaswag":
        data = bz2.open(path, "rt", encoding="utf-8").read() if path.endswith(".bz2") else open(path, encoding="utf-8").read()
        lines = data.rstrip("\n").split("\n")
        for i in range(0, len(lines), 6):
            docs.append({"text": hellaswag_preprocess(lines[i]), "choices": [hellaswag_preprocess(e) for e in lines[i + 2:i + 6]],
                         "gold": int(lines[i + 1]), "subject": "", "description": ""})
    elif task == "cmmlu":
        files = sorted(glob.glob(os.path.join(path, "*.csv"))) if os.path.isdir(path) else [path]
        for f in files:
            subject = os.path.basename(f)[:-4]
            rows = list(csv.reader(open(f, encoding="utf-8")))
            head = {h.strip(): i for i, h in enumerate(rows[0])}
            for r in rows[1:]:
                g = lambda k: r[head[k]]
                docs.append({"text": f"{g('Question').strip()}\nA. {g('A')}\nB. {g('B')}\nC. {g('C')}\nD. {g('D')}\n答案：",
                             "choices": ["A", "B", "C", "D"], "gold": ["A", "B", "C", "D"].index(g("Answer").strip()),
                             "subject": subject,
                             "description": f"以下是关于{CMMLU_SUBJECTS[subject]}的单项选择题，请直接给出正确答案的选项。\n\n"})
    return docs


def argmax(xs):
    best = 0
    for i, x in enumerate(xs):
        if x > xs[best]:
            best = i
    return best


def check(task, data, pool_path, shots, seed, limit, details):
    docs = read_docs(task, data)
    if limit > 0:
        docs = docs[:limit]
    pool = read_docs(task, pool_path) if pool_path != "-" else []
    same_split = pool_path != "-" and os.path.abspath(pool_path) == os.path.abspath(data)
    rnd = random.Random(seed)
    items = [json.loads(l) for l in open(details, encoding="utf-8") if l.strip()]
    bad = []
    if len(items) != len(docs):
        bad.append(f"{len(items)} items from golem, {len(docs)} documents")
    acc = acc_norm = acc_bytes = 0
    for doc, it in zip(docs, items):
        ctx = doc["description"]
        if shots > 0:
            subject_pool = [p for p in pool if p["subject"] == doc["subject"]]
            if task == "cmmlu":
                fewshotex = subject_pool[:shots]  # first_n sampler, dev split
            else:
                n = shots + 1 if same_split else shots
                fewshotex = rnd.sample(subject_pool, n)
            selected = [x for x in fewshotex if x != doc][:shots]
            for ex in selected:
                ctx += ex["text"] + " " + ex["choices"][ex["gold"]] + "\n\n"
        ctx += doc["text"]
        conts = [" " + c for c in doc["choices"]]
        if it["context"] != ctx:
            bad.append(f"{it['id']}: context {it['context']!r}, lm-eval's {ctx!r}")
        if it["continuations"] != conts:
            bad.append(f"{it['id']}: continuations {it['continuations']!r}, lm-eval's {conts!r}")
        lls = [sum(lp) for lp in it["logprobs"]]
        pred = argmax(lls)
        pred_norm = argmax([ll / len(c) for ll, c in zip(lls, doc["choices"])])
        pred_bytes = argmax([ll / len(c.encode("utf-8")) for ll, c in zip(lls, doc["choices"])])
        for name, want in (("pred", pred), ("pred_norm", pred_norm), ("pred_bytes", pred_bytes)):
            if it[name] != want:
                bad.append(f"{it['id']}: {name} {it[name]}, lm-eval's {want}")
        acc += pred == doc["gold"]
        acc_norm += pred_norm == doc["gold"]
        acc_bytes += pred_bytes == doc["gold"]
    n = max(1, len(docs))
    return {"n": len(docs), "acc": acc / n, "acc_norm": acc_norm / n, "acc_bytes": acc_bytes / n, "bad": bad[:10], "n_bad": len(bad)}


if __name__ == "__main__":
    cases = json.load(open(sys.argv[1], encoding="utf-8"))
    json.dump([check(c["task"], c["data"], c["pool"], c["shots"], c["seed"], c["limit"], c["details"]) for c in cases],
              sys.stdout, ensure_ascii=False)
