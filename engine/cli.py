"""``tagsmith`` command line: tag, explain, batch, eval, rules.

Unix habits: read a file or ``-`` (stdin), write answers to stdout (JSONL for many),
diagnostics to stderr, exit 0 on success, 1 when some records failed, 2 for unusable
input or options, with a one-line ``[E###] file:line: field: message`` and no traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

from engine.errors import E_ENCODING, E_INPUT, E_OPTION, TagsmithError

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


def _read_text(path: str) -> str:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise TagsmithError(E_INPUT, f"cannot read: {exc.strerror}", file=path) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TagsmithError(E_ENCODING, f"not UTF-8 (byte {exc.start})", file="<stdin>" if path == "-" else path) from None


def _tagger(args: argparse.Namespace) -> Any:
    from engine.api import Tagger

    mode = "rules" if getattr(args, "no_llm", False) else args.mode
    return Tagger(args.rules, mode=mode, model=args.model, device=args.device, excerpt_tokens=args.excerpt_tokens, batch_size=args.batch_size)


def _add_engine_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=["rules", "llm", "hybrid"], default="hybrid", help="decision mode (default: hybrid)")
    p.add_argument("--no-llm", action="store_true", help="rules only (same as --mode rules)")
    p.add_argument("--model", default=None, help="Hugging Face id, local folder or .gguf file (default: embedded SmolLM2-135M)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--rules", default=None, metavar="DIR", help="rule pack folder (default: the built-in pack)")
    p.add_argument("--excerpt-tokens", type=int, default=256, help="README tokens shown to the model")
    p.add_argument("--batch-size", type=int, default=8, help="items per model batch")


def _request_from_args(args: argparse.Namespace) -> Any:
    from engine.request import Request, parse_request
    from engine.request.parser import parse_max_tags
    from engine.taxonomy import Taxonomy

    if args.text is not None:
        if args.file not in (None, "-"):
            raise TagsmithError(E_OPTION, "give either a request FILE or --text, not both")
        if not args.taxonomy:
            raise TagsmithError(E_OPTION, "--text needs --taxonomy TAX.json")
        text = _read_text(args.text)
        if not text.strip():
            from engine.errors import E_EMPTY_TEXT

            raise TagsmithError(E_EMPTY_TEXT, "the project description is empty", file=args.text)
        n = parse_max_tags(args.max_tags if args.max_tags is not None else 3, "--max-tags")
        skeleton = {"id": args.id, "tags": []}
        return Request(text=text, id=args.id, max_tags=n, taxonomy=Taxonomy.load(args.taxonomy), skeleton=skeleton)
    src = args.file or "-"
    req = parse_request(_read_text(src), source="<stdin>" if src == "-" else src)
    if args.max_tags is not None:
        from dataclasses import replace

        req = replace(req, max_tags=parse_max_tags(args.max_tags, "--max-tags"))
    return req


def cmd_tag(args: argparse.Namespace) -> int:
    req = _request_from_args(args)
    result = _tagger(args).tag_request(req)
    print(result.to_json())
    if args.explain or args.explain_file:
        payload = json.dumps(result.explanation.to_dict(), ensure_ascii=False, indent=2)
        if args.explain_file:
            Path(args.explain_file).write_text(payload + "\n", encoding="utf-8")
        else:
            print(payload, file=sys.stderr)
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from engine.report import render_markdown

    req = _request_from_args(args)
    result = _tagger(args).tag_request(req)
    sys.stdout.write(render_markdown(result.explanation.to_dict()))
    return EXIT_OK


def _records(path: str) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, record or None, error) for each non-blank line of a JSONL file."""
    fh = sys.stdin.buffer if path == "-" else open(path, "rb")
    with fh:
        for no, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield no, None, f"not UTF-8 (byte {exc.start})"
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                yield no, None, f"invalid JSON: {exc.msg}"
                continue
            if not isinstance(rec, dict):
                yield no, None, "record is not a JSON object"
                continue
            if rec.get("id") in (None, ""):
                yield no, None, "missing id"
                continue
            if not isinstance(rec.get("text"), str) or not rec["text"].strip():
                yield no, None, "missing or empty text"
                continue
            yield no, rec, None


def cmd_batch(args: argparse.Namespace) -> int:
    from engine.api import as_taxonomy

    if args.max_tags is not None and args.max_tags < 1:
        raise TagsmithError(E_OPTION, f"--max-tags must be a positive integer, got {args.max_tags}")
    if not os.path.exists(args.input) and args.input != "-":
        raise TagsmithError(E_INPUT, "input not found", file=args.input)
    tax = as_taxonomy(args.taxonomy)
    tagger = _tagger(args)
    max_tags = args.max_tags or 3
    out_path = args.output
    done: set[str] = set()
    if args.resume and out_path != "-" and os.path.exists(out_path):
        done = _answered_ids(out_path)
    out = sys.stdout if out_path == "-" else open(out_path, "a" if args.resume else "w", encoding="utf-8")
    err_path = (out_path + ".errors.jsonl") if out_path != "-" else None
    errors = open(err_path, "a" if args.resume else "w", encoding="utf-8") if err_path else sys.stderr
    seen: set[str] = set(done)
    n_err = n_ok = 0
    bar = None
    if sys.stderr.isatty() and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(unit="item", file=sys.stderr)
    pending: list[tuple[int, dict]] = []

    def flush() -> None:
        nonlocal n_ok
        if not pending:
            return
        results = tagger.tag_many([r for _, r in pending], taxonomy=tax, max_tags=max_tags)
        for res in results:
            out.write(json.dumps({"id": res.id, "tags": res.tags}, ensure_ascii=False, separators=(",", ":")) + "\n")
        out.flush()
        n_ok += len(results)
        if bar:
            bar.update(len(results))
        pending.clear()

    try:
        for no, rec, problem in _records(args.input):
            if rec is not None:
                rid = str(rec["id"])
                if rid in done:
                    continue
                if rid in seen:
                    problem = f"duplicate id {rid!r}"
                elif args.max_chars and len(rec["text"]) > args.max_chars:
                    problem = f"text longer than --max-chars {args.max_chars} ({len(rec['text'])})"
            if problem:
                n_err += 1
                errors.write(json.dumps({"line": no, "id": None if rec is None else rec.get("id"), "error": problem}, ensure_ascii=False) + "\n")
                errors.flush()
                if bar:
                    bar.set_postfix(errors=n_err)
                continue
            seen.add(str(rec["id"]))
            pending.append((no, {"id": str(rec["id"]), "text": rec["text"]}))
            if len(pending) >= tagger.batch_size:
                flush()
        flush()
    finally:
        if bar:
            bar.close()
        if out is not sys.stdout:
            out.close()
        if errors is not sys.stderr:
            errors.close()
    if not args.quiet:
        print(f"tagged {n_ok}, failed {n_err}" + (f", skipped {len(done)} already answered" if done else ""), file=sys.stderr)
    return EXIT_PARTIAL if n_err else EXIT_OK


def _answered_ids(path: str) -> set[str]:
    """Ids in an output file; a torn last line (killed mid-write) is cut off."""
    ids: set[str] = set()
    with open(path, "rb+") as fh:
        data = fh.read()
        good = data.rfind(b"\n") + 1
        if good < len(data):
            fh.truncate(good)
        for line in data[:good].splitlines():
            try:
                ids.add(str(json.loads(line)["id"]))
            except (ValueError, KeyError, TypeError):
                continue
    return ids


def cmd_eval(args: argparse.Namespace) -> int:
    import time

    from engine.api import as_taxonomy
    from engine.report.metrics import format_metrics, score

    tax = as_taxonomy(args.taxonomy)
    rows = [r for _, r, p in _records(args.gold) if r is not None]
    tagger = _tagger(args)
    t0 = time.perf_counter()
    results = tagger.tag_many(rows, taxonomy=tax, max_tags=args.max_tags or 3)
    secs = (time.perf_counter() - t0) / max(len(rows), 1)
    gold = [[tax.get(t).name if tax.get(t) else t for t in r.get("tags", [])] for r in rows]
    m = score(gold, [r.tags for r in results])
    print(format_metrics(m, label=f"mode={tagger.mode} ", per_tag=not args.summary))
    print(f"seconds/item={secs:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({**m.to_dict(), "mode": tagger.mode, "seconds_per_item": secs}, indent=2))
    if args.errors:
        for r, res, g in zip(rows, results, gold):
            if set(res.tags) != set(g):
                print(f"\n## {r['id']} {r.get('repo', '')}: gold {g} predicted {res.tags}")
                for c in res.explanation.candidates[:5]:
                    ev = ", ".join(f"{e['text']!r}@{e['section']}" for e in c["evidence"][:4])
                    print(f"   {c['tag']:<18} {c['score']:.2f}  {ev}")
    return EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    from engine.rules import load_pack

    if args.rules_cmd == "schema":
        from engine.rules.schema import RulePackFile

        print(json.dumps(RulePackFile.model_json_schema(), indent=2))
        return EXIT_OK
    pack = load_pack(args.dir)
    if args.rules_cmd == "check":
        print(f"ok: {len(pack)} tag rules in {pack.root} (digest {pack.digest})")
        return EXIT_OK
    from engine.rules.examples import run_examples

    failures, total = run_examples(pack)
    for f in failures:
        print(f, file=sys.stderr)
    print(f"{total - len(failures)} passed, {len(failures)} failed")
    return EXIT_PARTIAL if failures else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tagsmith", description="Tag software projects: rules + constrained LLM.")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, help_ in (("tag", "tag one request, print the expected JSON"), ("explain", "tag one request, print a Markdown explanation")):
        t = sub.add_parser(name, help=help_)
        t.add_argument("file", nargs="?", default=None, help="raw request file, or - for stdin")
        t.add_argument("--text", default=None, metavar="FILE", help="a plain description file instead of a raw request")
        t.add_argument("--id", default=None)
        t.add_argument("--taxonomy", default=None, metavar="TAX.json")
        t.add_argument("--max-tags", default=None, help="at most N tags (overrides the request)")
        _add_engine_opts(t)
        if name == "tag":
            t.add_argument("--explain", action="store_true", help="also write the JSON explanation to stderr")
            t.add_argument("--explain-file", default=None, metavar="FILE", help="write the JSON explanation here")
    b = sub.add_parser("batch", help="tag a JSONL file of {id,text} records")
    b.add_argument("input")
    b.add_argument("-o", "--output", default="-")
    b.add_argument("--taxonomy", required=True)
    b.add_argument("--max-tags", type=int, default=None)
    b.add_argument("--max-chars", type=int, default=0, help="reject records longer than this (0: no limit)")
    b.add_argument("--resume", action="store_true", help="skip ids already in the output file")
    b.add_argument("--quiet", action="store_true")
    _add_engine_opts(b)
    e = sub.add_parser("eval", help="score against a gold JSONL file (id, text, tags)")
    e.add_argument("gold")
    e.add_argument("--taxonomy", required=True)
    e.add_argument("--max-tags", type=int, default=None)
    e.add_argument("--errors", action="store_true", help="list wrong items with their evidence")
    e.add_argument("--summary", action="store_true", help="no per-tag table")
    e.add_argument("--json", default=None, metavar="FILE", help="also write the metrics as JSON")
    _add_engine_opts(e)
    r = sub.add_parser("rules", help="rule-pack tools")
    rs = r.add_subparsers(dest="rules_cmd", required=True)
    for name, help_ in (("check", "validate a pack"), ("test", "run each rule's examples")):
        x = rs.add_parser(name, help=help_)
        x.add_argument("dir", nargs="?", default=None)
    rs.add_parser("schema", help="print the JSON Schema of a rule-pack file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"tag": cmd_tag, "explain": cmd_explain, "batch": cmd_batch, "eval": cmd_eval, "rules": cmd_rules}[args.cmd]
    try:
        return handler(args)
    except TagsmithError as exc:
        print(f"tagsmith: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
