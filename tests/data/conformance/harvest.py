"""Cut every postback and Appendix C example out of the public forks' history (run by hand).

Not a test: how ``postbacks/*.xml`` and ``reports/*.xml`` (and each
expectation's ``source``) were made, so a reviewer can redo it. Needs local
clones of the public forks of ``SkycoreMobile/API``::

    git clone https://github.com/cosmosking2050/API cosmos
    git clone https://github.com/ryan-allan/API ryan
    python tests/data/conformance/harvest.py cosmos ryan OUT

Every revision of every page showing a postback or a report is read; fenced
code blocks are taken verbatim, the 2013 HTML pages with their markup removed
and their entities decoded as a browser shows them. Examples equal up to the
whitespace between tags are one; the text kept is the earliest published.
``OUT/<kind>/<name>.xml`` and ``OUT/<kind>/<name>.source.json`` are written;
the expectations were then written by hand from the pages (see postbacks/README.md).
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys

POSTBACK_PAGE = re.compile(r"(?i)postback|notification|incoming|SMS\+M[MS]S")
REPORT_PAGE = re.compile(r"(?i)appendix[ _]?c\.md$")
SKIP = re.compile(r"(?i)SCHEMA/RELAX|/METHODS/|/FUNCTIONS|FUNCTIONS\(\)|^[a-zA-Z]+\(\)\.md$")
POSTBACK_START = re.compile(r"<\?xml[^>]*\?>\s*<(POSTBACK|NOTIFICATION)\b|<(POSTBACK|NOTIFICATION)\b")
REPORT_ROOT = re.compile(r"<(TEXT|CONTENT|BATCHES|AUTORESPONDERS|SUBSCRIPTIONS|SENDING_LIST)\b")
MESSAGE = re.compile(r"<(CONTENT|TEXT) [^>]*\bid=")


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, check=True).stdout.decode("utf-8", "replace")


def blocks(text: str) -> list[tuple[str, str]]:
    """(how, text) of each code block as a reader sees it."""
    found = [("fenced", m.group(1)) for m in re.finditer(r"```[A-Za-z]*[ \t]*\n(.*?)```", text, re.S)]
    rest = re.sub(r"```[A-Za-z]*[ \t]*\n.*?```", "", text, flags=re.S)
    for m in re.finditer(r"(?s)<(pre|code|p)\b[^>]*>(.*?)</\1>", rest):
        if "&lt;" in m.group(2):
            chunk = re.sub(r"<[^>]+>", "", re.sub(r"(?i)<br\s*/?>", "", m.group(2)))
            found.append(("html", html.unescape(chunk)))
    return found


def postback_documents(block: str) -> list[str]:
    documents, at = [], 0
    while (match := POSTBACK_START.search(block, at)) is not None:
        root = match.group(1) or match.group(2)
        end = block.find(f"</{root}>", match.end())
        if end < 0:
            break  # prose naming a tag, not an example
        end += len(root) + 3
        documents.append(block[match.start() : end])
        at = end
    return documents


def normalised(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r">\s*<", "><", re.sub(r"\s*(/?>)", r"\1", text))


def main(repos: dict[str, str], out: str) -> None:
    found: dict[tuple[str, str], dict] = {}
    for name, repo in repos.items():
        for line in git(repo, "log", "--all", "--format=%H %ad", "--date=iso-strict").splitlines():
            commit, date = line.split(" ", 1)
            for entry in git(repo, "ls-tree", "-r", commit).splitlines():
                meta, path = entry.split("\t", 1)
                kind = "reports" if REPORT_PAGE.search(path) else "postbacks" if POSTBACK_PAGE.search(path) else None
                if kind is None or SKIP.search(path):
                    continue
                text = git(repo, "cat-file", "-p", meta.split()[2])
                for how, block in blocks(text):
                    if kind == "postbacks":
                        examples = postback_documents(block)
                    else:
                        start = block.find("<")
                        example = block[start:].rstrip() if start >= 0 else ""
                        # an example shows at least one message; prose naming the tags does not
                        examples = [example] if REPORT_ROOT.match(example) and MESSAGE.search(example) else []
                    for example in examples:
                        item = found.setdefault((kind, normalised(example)), {"seen": [], "date": date, "text": example})
                        item["seen"].append((name, path, commit, date))
                        if date < item["date"]:
                            item.update(date=date, text=example, how=how)
                        item.setdefault("how", how)
    for (kind, _), item in found.items():
        seen = sorted(item["seen"], key=lambda s: s[3])
        first = seen[0]
        code = re.search(r"<(?:CODE|STATUSCODE)>([A-Z0-9]+)<", item["text"])
        label = code.group(1) if code else re.match(r"<([A-Z_]+)", item["text"]).group(1)
        page = os.path.basename(first[1]).replace(".md", "").replace(" ", "_").replace("+", "_")
        stem = f"{first[3][:10]}_{page}_{label}"
        number = 0
        while os.path.exists(os.path.join(out, kind, stem + (f"_{number}" if number else "") + ".xml")):
            number += 1
        stem += f"_{number}" if number else ""
        os.makedirs(os.path.join(out, kind), exist_ok=True)
        with open(os.path.join(out, kind, stem + ".xml"), "w", encoding="utf-8") as handle:
            handle.write(item["text"].rstrip("\n") + "\n")
        source = {
            "repository": first[0], "page": first[1], "commit": first[2], "date": first[3],
            "last_seen": dict(zip(("repository", "page", "commit", "date"), seen[-1])),
            "pages": sorted({s[1] for s in seen}), "revisions": len({s[2] for s in seen}), "how": item["how"],
        }
        with open(os.path.join(out, kind, stem + ".source.json"), "w", encoding="utf-8") as handle:
            json.dump(source, handle, indent=2)


if __name__ == "__main__":
    main({"cosmosking2050/API": sys.argv[1], "ryan-allan/API": sys.argv[2]}, sys.argv[3])
