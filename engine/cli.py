"""``tagsmith`` command line: tag, explain, batch, eval, train, label, serve, rules.

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
from typing import Any

from engine.errors import E_ENCODING, E_INPUT, E_OPTION, E_WORKER, E_WRITE_STOPPED, TagsmithError
from engine.io.labels import load_gold

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2
DTYPE_CHOICES = ("auto", "float32", "bfloat16")  # engine.decision.model.DTYPES, without importing torch


def _read_bounded(path: str, chars: int, keep_tail: bool) -> tuple[str, str | None]:
    """A description file or raw request, read in bounded memory (see engine.io.bounded):
    the text, and a note for the explanation when part of the input was not read."""
    from engine.io.bounded import TAIL_BYTES, decode_head, read_bounded

    name = "<stdin>" if path == "-" else path
    head = chars * 4 + 4 if chars else 1 << 62
    try:
        if path == "-":
            got = read_bounded(sys.stdin.buffer, head, TAIL_BYTES if keep_tail else 0)
        else:
            with open(path, "rb") as f:
                got = read_bounded(f, head, TAIL_BYTES if keep_tail else 0)
    except OSError as exc:
        raise TagsmithError(E_INPUT, f"cannot read: {exc.strerror}", file=path) from None
    try:
        if not got.skipped:
            return got.data.decode("utf-8"), None
        if keep_tail:
            head_text = decode_head(got.data[:head])
            tail = got.data[head:]
            cut = tail.find(b"\n")  # the tail starts mid-line, maybe mid-character
            text = head_text + "\n" + tail[cut + 1 if cut >= 0 else 0:].decode("utf-8")
        else:
            text = decode_head(got.data)
    except UnicodeDecodeError as exc:
        raise TagsmithError(E_ENCODING, f"not UTF-8 (byte {exc.start})", file=name) from None
    return text, f"input of {got.total:,} bytes: {got.skipped:,} bytes past the analysed part were not read"


def _tagger_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``Tagger`` keyword arguments from the engine options (plain values: they travel
    to Ray workers)."""
    mode = "rules" if getattr(args, "no_llm", False) else args.mode
    adapter = None if args.no_adapter else (args.adapter or "default")
    overrides = {k: v for k, v in (("shortlist", args.shortlist), ("prior_weight", args.prior_weight), ("count", args.count)) if v is not None}
    return dict(pack=args.rules, mode=mode, model=args.model, device=args.device, excerpt_tokens=args.excerpt_tokens, batch_size=args.batch_size,
                overlap=args.overlap, adapter=adapter, policy_overrides=overrides, analyze_chars=args.analyze_chars, dtype=args.dtype,
                constraint=args.constraint, bridge=not args.no_bridge)


def _tagger(args: argparse.Namespace) -> Any:
    from engine.api import Tagger

    return Tagger(**_tagger_kwargs(args))


def _add_engine_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=["rules", "llm", "hybrid"], default="hybrid", help="decision mode (default: hybrid)")
    p.add_argument("--no-llm", action="store_true", help="rules only (same as --mode rules)")
    p.add_argument("--model", default=None, help="Hugging Face id, local folder or .gguf file (default: embedded SmolLM2-135M)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto",
                   help="model weights: auto = bfloat16 on a GPU and on a CPU with native bfloat16 (AVX-512 BF16, AMX; ~1.7x faster there), else float32")
    p.add_argument("--rules", default=None, metavar="DIR", help="rule pack folder (default: the built-in pack)")
    p.add_argument("--no-bridge", action="store_true",
                   help="tags the rule pack has no rule for get evidence from their own names and descriptions only, not from "
                        "the pack's rules for the concepts they name (kubernetes -> k8s)")
    p.add_argument("--constraint", choices=("direct", "outlines"), default="direct",
                   help="answer constraint engine: the direct index (default, 250-850x faster to compile) or Outlines' regex index; same answers")
    p.add_argument("--excerpt-tokens", type=int, default=None, help="README tokens shown to the model (default: what the adapter was trained with, else 256)")
    p.add_argument("--batch-size", type=int, default=None, help="items per model batch (default: 64 on GPU, 8 on CPU)")
    p.add_argument("--overlap", type=int, default=None, help="batches decoded at once, one thread each (default: 2 on GPU, 1 on CPU)")
    p.add_argument("--analyze-chars", type=int, default=100_000, metavar="N",
                   help="analyse the first N characters of a description (default 100000; 0: the most, 1000000); the explanation says when a text was cut")
    p.add_argument("--adapter", default=None, metavar="DIR", help="trained adapter folder (default: the shipped one, with the embedded model)")
    p.add_argument("--no-adapter", action="store_true", help="the bare model, without any adapter")
    p.add_argument("--shortlist", type=int, default=None, help="hybrid: rule candidates the model may choose from (default: the adapter's policy)")
    p.add_argument("--prior-weight", type=float, default=None, help="hybrid: weight of the rule prior on the model (0: the model alone; a decision head ignores it)")
    p.add_argument("--count", choices=["rules", "model"], default=None, help="hybrid: who decides how many tags (a decision head decides itself)")


def _request_from_args(args: argparse.Namespace) -> Any:
    from engine.request import Request, parse_request
    from engine.request.parser import parse_max_tags
    from engine.taxonomy import Taxonomy

    if args.text is not None:
        if args.file not in (None, "-"):
            raise TagsmithError(E_OPTION, "give either a request FILE or --text, not both")
        if not args.taxonomy:
            raise TagsmithError(E_OPTION, "--text needs --taxonomy TAX.json")
        text, note = _read_bounded(args.text, args.analyze_chars, keep_tail=False)
        if not text.strip():
            from engine.errors import E_EMPTY_TEXT

            raise TagsmithError(E_EMPTY_TEXT, "the project description is empty", file=args.text)
        n = parse_max_tags(args.max_tags if args.max_tags is not None else 3, "--max-tags")
        skeleton = {"id": args.id, "tags": []}
        return Request(text=text, id=args.id, max_tags=n, taxonomy=Taxonomy.load(args.taxonomy), skeleton=skeleton), note
    src = args.file or "-"
    raw, note = _read_bounded(src, args.analyze_chars, keep_tail=True)
    req = parse_request(raw, source="<stdin>" if src == "-" else src)
    if args.max_tags is not None:
        from dataclasses import replace

        req = replace(req, max_tags=parse_max_tags(args.max_tags, "--max-tags"))
    return req, note


def cmd_tag(args: argparse.Namespace) -> int:
    req, note = _request_from_args(args)
    result = _tagger(args).tag_request(req, notes=[note] if note else None)
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

    req, note = _request_from_args(args)
    result = _tagger(args).tag_request(req, notes=[note] if note else None)
    sys.stdout.write(render_markdown(result.explanation.to_dict()))
    return EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    from engine.api import as_taxonomy
    from engine.io.batch import BatchJob

    if args.max_tags is not None and args.max_tags < 1:
        raise TagsmithError(E_OPTION, f"--max-tags must be a positive integer, got {args.max_tags}")
    if args.input != "-" and not os.path.exists(args.input):
        raise TagsmithError(E_INPUT, "input not found", file=args.input)
    if args.resume and args.output == "-":
        raise TagsmithError(E_OPTION, "--resume needs an output file (-o OUT.jsonl)")
    if args.engine == "ray":
        return _batch_on_ray(args)
    job = BatchJob(
        _tagger(args), as_taxonomy(args.taxonomy), max_tags=args.max_tags or 3, max_chars=args.max_chars,
        workers=args.workers, explain_dir=args.explain_dir, progress=sys.stderr.isatty() and not args.quiet,
    )
    try:
        stats = job.run(args.input, args.output, resume=args.resume, fmt=args.format, id_col=args.id_col, text_col=args.text_col)
    except TagsmithError as exc:
        if exc.code not in (E_WORKER, E_WRITE_STOPPED):
            raise
        print(f"tagsmith: {exc}", file=sys.stderr)  # not a usage error: the run stopped short
        return EXIT_PARTIAL
    if not args.quiet:
        skipped = f", skipped {stats.skipped} already answered" if stats.skipped else ""
        print(f"tagged {stats.ok}, failed {stats.failed}{skipped}", file=sys.stderr)
    return EXIT_PARTIAL if stats.failed else EXIT_OK


def _batch_on_ray(args: argparse.Namespace) -> int:
    try:
        from engine.distributed.ray_runner import RayBatchJob, RaySettings
    except ImportError as exc:
        raise TagsmithError(E_OPTION, f"--engine ray needs the ray extra (pip install 'tagsmith[ray]'): {exc}") from None
    from engine.api import as_taxonomy

    if args.output == "-":
        raise TagsmithError(E_OPTION, "--engine ray writes a folder of shards: give -o OUT_DIR")
    if args.explain_dir or args.format == "csv" or args.input == "-":
        raise TagsmithError(E_OPTION, "--engine ray reads JSONL or Parquet files (a file or a folder of shards) and writes no explanations")
    if args.workers < 1 or args.shard_lines < 1 or args.gpus_per_worker < 0:
        raise TagsmithError(E_OPTION, "--workers and --shard-lines must be >= 1, --gpus-per-worker >= 0")
    settings = RaySettings(address=args.address, workers=args.workers, gpus_per_worker=args.gpus_per_worker, lines_per_shard=args.shard_lines)
    job = RayBatchJob(_tagger_kwargs(args), as_taxonomy(args.taxonomy), max_tags=args.max_tags or 3, max_chars=args.max_chars,
                      settings=settings, progress=sys.stderr.isatty() and not args.quiet)
    stats = job.run(args.input, args.output, resume=args.resume)
    if not args.quiet:
        skipped = f", skipped {stats.skipped} in finished shards" if stats.skipped else ""
        print(f"tagged {stats.ok}, failed {stats.failed}{skipped} (answers in {args.output}/part-*.jsonl)", file=sys.stderr)
    return EXIT_PARTIAL if stats.failed else EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    import time

    from engine.api import as_taxonomy
    from engine.report.metrics import format_metrics, score

    tax = as_taxonomy(args.taxonomy)
    gold_rows = load_gold(args.gold)
    rows = [{"id": str(r["id"]), "text": r["text"], "repo": r.get("repo", "")} for r in gold_rows]
    tagger = _tagger(args)
    t0 = time.perf_counter()
    results = tagger.tag_many(rows, taxonomy=tax, max_tags=args.max_tags or 3)
    secs = (time.perf_counter() - t0) / max(len(rows), 1)
    gold = [[tax.canonical(t) for t in r.get("tags", [])] for r in gold_rows]
    m = score(gold, [r.tags for r in results])
    print(format_metrics(m, label=f"mode={tagger.mode} ", per_tag=not args.summary))
    print(f"seconds/item={secs:.3f}")
    from engine.report.calibration import format_reliability, reliability

    pairs = [(c.confidence, c.tag in set(g)) for res, g in zip(results, gold) for c in res.explanation.chosen]
    buckets, ece = reliability(pairs)
    print(format_reliability(buckets, ece))
    if args.json:
        Path(args.json).write_text(json.dumps({**m.to_dict(), "mode": tagger.mode, "seconds_per_item": secs, "ece": ece}, indent=2))
    if args.errors:
        for r, res, g in zip(rows, results, gold):
            if set(res.tags) != set(g):
                print(f"\n## {r['id']} {r.get('repo', '')}: gold {g} predicted {res.tags}")
                for c in res.explanation.candidates[:5]:
                    ev = ", ".join(f"{e['text']!r}@{e['section']}" for e in c["evidence"][:4])
                    print(f"   {c['tag']:<18} {c['score']:.2f}  {ev}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from engine.training.card import chosen_row
    from engine.training.job import SHORTLIST, check_gold, train, train_head
    from engine.training.lora import LoraSettings

    check_gold(args.gold)
    command = "tagsmith " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""
    progress = sys.stderr.isatty() and not args.quiet
    log = None if not args.quiet else (lambda m: None)
    if args.lora and args.any_list is not None:
        raise TagsmithError(E_OPTION, "--any-list trains a decision head: not with --lora")
    if not args.lora:
        card = train_head(args.gold, args.taxonomy, args.output, model=args.model, device=args.device, rules=args.rules,
                          folds=5 if args.folds is None else args.folds, seed=args.seed, shortlist=args.shortlist,
                          kind=args.head, fraction=args.fraction, progress=progress, log=log, command=command,
                          excerpt_tokens=args.excerpt_tokens, dtype=args.dtype, ablations=args.ablations,
                          learn_rules=args.learn_rules, neighbours=None if args.no_neighbours else args.neighbours,
                          any_list=args.any_list, bridge=not args.no_bridge, twin_share=args.twin_share)
    else:
        if args.epochs < 1 or args.layers < 1 or args.rank < 1:
            raise TagsmithError(E_OPTION, "--epochs, --layers and --rank must be positive")
        settings = LoraSettings(layers=args.layers, rank=args.rank, alpha=2 * args.rank, lr=args.lr, epochs=args.epochs, seed=args.seed)
        card = train(args.gold, args.taxonomy, args.output, model=args.model, device=args.device, rules=args.rules, settings=settings,
                     folds=3 if args.folds is None else args.folds, shortlist=args.shortlist or SHORTLIST, fraction=args.fraction, progress=progress,
                     log=log, command=command, excerpt_tokens=args.excerpt_tokens)
    chosen = chosen_row(card)
    summary = f", cross-validated micro-F1 {chosen['micro_f1']:.3f} top-1 {chosen['top1']:.3f}" if chosen else ""
    print(f"adapter: {args.output} ({card['training']['seconds']:.0f} s{summary})", file=sys.stderr)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from engine.serve import run_server
        from engine.serve.app import ServiceSettings
    except ImportError as exc:
        raise TagsmithError(E_OPTION, f"the service needs the serve extra (pip install 'tagsmith[serve]'): {exc}") from None
    from engine.taxonomy import Taxonomy

    taxonomy = Taxonomy.load(args.taxonomy) if args.taxonomy else None
    for name in ("max_batch", "max_body_bytes", "max_call_items", "max_queue"):
        if getattr(args, name) < 1:
            raise TagsmithError(E_OPTION, f"--{name.replace('_', '-')} must be >= 1")
    if args.max_wait_ms < 0:
        raise TagsmithError(E_OPTION, "--max-wait-ms must be >= 0")
    settings = ServiceSettings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_body_bytes=args.max_body_bytes,
                               max_call_items=args.max_call_items, max_queue=args.max_queue, lexicon_workers=max(0, args.workers))
    run_server(_tagger(args), taxonomy, args.host, args.port, settings, drain_timeout=args.drain_timeout, access_log=args.access_log)
    return EXIT_OK


def cmd_label(args: argparse.Namespace) -> int:
    """Label READMEs on a local page (see engine.label), or compare two annotators."""
    from engine.label import (LabelSession, LabelStore, SessionSettings, compare_labels, read_items, review_items,
                              write_disagreements)
    from engine.taxonomy import Taxonomy

    if args.compare:
        for f in args.compare:
            if not Path(f).is_file():
                raise TagsmithError(E_INPUT, "label file not found", file=f)
        cmp = compare_labels(*args.compare)
        print(cmp.format())
        if args.output:
            write_disagreements(cmp, args.output)
            print(f"{len(cmp.disagreements)} items to adjudicate: tagsmith label {args.output} -o ADJUDICATED.jsonl --taxonomy TAX",
                  file=sys.stderr)
        return EXIT_OK
    if not args.output or not args.taxonomy:
        raise TagsmithError(E_OPTION, "tagsmith label needs -o LABELS.jsonl and --taxonomy TAX.json (or --compare A B)")
    if args.max_tags < 1:
        raise TagsmithError(E_OPTION, f"--max-tags must be a positive integer, got {args.max_tags}")
    if args.review and not args.review_input:
        raise TagsmithError(E_OPTION, "--review OUT.jsonl needs --input IN (the batch run's input, for the READMEs)")
    if not args.review and not args.input:
        raise TagsmithError(E_OPTION, "give the READMEs to label (IN), --review OUT.jsonl --input IN, or --compare A B")
    tax = Taxonomy.load(args.taxonomy)
    store = LabelStore(args.output)  # refused at once if another session holds the file
    try:
        warn = lambda m: print(m, file=sys.stderr)  # noqa: E731
        read = dict(fmt=args.format, id_col=args.id_col, text_col=args.text_col)
        items = (review_items(args.review, args.review_input, tax, warn=warn, **read) if args.review
                 else read_items(args.input, tax, warn=warn, **read))
        if not items:
            raise TagsmithError(E_INPUT, "nothing to label", file=args.review or args.input)
        settings = SessionSettings(max_tags=args.max_tags, order=args.order, random_share=args.random_share, seed=args.seed,
                                   annotator=args.annotator, review=bool(args.review))
        session = LabelSession(items, _tagger(args), tax, store, settings)
        try:
            return _serve_labels(session, args)
        finally:
            session.close()
    finally:
        store.close()


def _serve_labels(session: Any, args: argparse.Namespace) -> int:
    import signal
    import threading

    try:
        from engine.label.app import create_label_app
        from engine.serve import ServerThread
    except ImportError as exc:
        raise TagsmithError(E_OPTION, f"the labelling page needs the serve extra (pip install 'tagsmith[serve]'): {exc}") from None
    first = session.item(session.start)  # the model loads and the first item is ready before the page is
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = ServerThread(create_label_app(session), args.host, args.port)
        url = server.__enter__()
    except (OSError, RuntimeError) as exc:  # uvicorn binds in its thread: a taken port ends it (RuntimeError)
        raise TagsmithError(E_OPTION, f"cannot listen on {args.host}:{args.port}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        print(f"tagsmith label: {url}/ ({first['total']} items, {first['decided']} decided; order {session.kind}; "
              f"every decision is saved to {args.output} as it is made; Ctrl-C stops)", file=sys.stderr, flush=True)
        if args.open:
            import webbrowser

            webbrowser.open(url + "/")
        stop.wait()
    finally:
        server.__exit__(None, None, None)
    done = session.progress()
    print(f"tagsmith label: {done['decided']} of {done['total']} decided in {args.output}", file=sys.stderr)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from engine.report.batch import build_report

    report = build_report(args.answers, args.explain_dir, args.gold, args.input)
    if args.format == "md":
        from engine.report.markdown import render_batch_markdown

        body = render_batch_markdown(report)
    else:
        from engine.report.html import render_html

        body = render_html(report)
    if args.output == "-":
        sys.stdout.write(body)
    else:
        Path(args.output).write_text(body, encoding="utf-8")
        print(f"report: {args.output} ({report['n']} items)", file=sys.stderr)
    return EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    from engine.rules import load_pack

    if args.rules_cmd == "schema":
        from engine.rules.schema import RulePackFile

        print(json.dumps(RulePackFile.model_json_schema(), indent=2))
        return EXIT_OK
    if args.rules_cmd == "learn":
        return _rules_learn(args)
    pack = load_pack(args.dir)
    if args.rules_cmd == "bridge":
        from engine.api import as_taxonomy
        from engine.bridge import bridge
        from engine.bridge.write import format_links, write

        tax = as_taxonomy(args.taxonomy)
        bridged = bridge(pack, tax)
        print(format_links(bridged, tax))
        if args.output:
            from engine.rules.pack import extends_spec

            print(f"wrote {write(bridged, args.output, extends_spec(args.dir, args.output))}", file=sys.stderr)
        return EXIT_OK
    if args.rules_cmd == "analyze":
        from engine.api import as_taxonomy
        from engine.lexicon import Lexicon
        from engine.report.rule_analysis import analyze, format_analysis

        tax = as_taxonomy(args.taxonomy) if args.taxonomy else as_taxonomy([r.tag for r in pack.rules.values()])
        gold = [(r["text"], [tax.canonical(t) for t in r.get("tags", [])]) for r in load_gold(args.gold)]
        from engine.bridge import bridge

        tags, terms = analyze(Lexicon(bridge(pack, tax).pack, tax), gold)
        print(format_analysis(tags, terms, min_fires=args.min_fires))
        return EXIT_OK
    if args.rules_cmd == "check":
        print(f"ok: {len(pack)} tag rules in {pack.root} (digest {pack.digest})")
        return EXIT_OK
    from engine.rules.examples import run_examples

    failures, total = run_examples(pack)
    for f in failures:
        print(f, file=sys.stderr)
    print(f"{total - len(failures)} passed, {len(failures)} failed")
    return EXIT_PARTIAL if failures else EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from engine.doctor import main as doctor

    return doctor(args.device, args.dtype, args.adapter, args.rules, args.json)


def cmd_grammar(args: argparse.Namespace) -> int:
    from engine.api import as_taxonomy
    from engine.grammar import render
    from engine.request.parser import parse_max_tags

    print(render(as_taxonomy(args.taxonomy), parse_max_tags(args.max_tags, "--max-tags"), args.format))
    return EXIT_OK


def _rules_learn(args: argparse.Namespace) -> int:
    from engine.api import as_taxonomy
    from engine.mining import learn_rows, write
    from engine.rules import load_pack
    from engine.training.examples import gold_tags

    out = Path(args.output)
    if out.exists() and any(out.iterdir()):
        raise TagsmithError(E_OPTION, "output folder exists and is not empty", file=str(out))
    if not Path(args.gold).is_file():
        raise TagsmithError(E_INPUT, "gold file not found", file=args.gold)
    tax = as_taxonomy(args.taxonomy)
    rows = load_gold(args.gold)
    golds = [gold_tags(r, tax, f"{args.gold}: record {r.get('id')!r}") for r in rows]
    learned = learn_rows(rows, golds, tax, progress=sys.stderr.isatty())
    path = write(learned, out, os.path.basename(args.gold), extends=args.extends, examples=args.examples)
    pack = load_pack(out)  # what was written loads with the ordinary loader
    terms = sum(len(r.terms) for r in learned.rules)
    print(f"learned {terms} terms for {sum(1 for r in learned.rules if r.terms)} of {len(tax)} tags from {len(rows)} READMEs: "
          f"{path} ({len(pack)} tag rules{', on top of ' + args.extends if args.extends else ''})", file=sys.stderr)
    return EXIT_OK


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
    b = sub.add_parser("batch", help="tag records from JSONL, CSV or a folder of READMEs")
    b.add_argument("input", help="JSONL ({id,text} per line), CSV, a folder (id = file name), or -")
    b.add_argument("--format", choices=["auto", "jsonl", "csv"], default="auto")
    b.add_argument("--id-col", default="id", help="CSV column with the id")
    b.add_argument("--text-col", default="text", help="CSV column with the description")
    b.add_argument("--explain-dir", default=None, metavar="DIR", help="write one explanation JSON per id here")
    b.add_argument("--workers", type=int, default=1, help="lexicon worker processes (overlap with the model); --engine ray: decision actors")
    b.add_argument("-o", "--output", default="-")
    b.add_argument("--taxonomy", required=True)
    b.add_argument("--max-tags", type=int, default=None)
    b.add_argument("--max-chars", type=int, default=0, help="reject records longer than this (0: no limit)")
    b.add_argument("--resume", action="store_true", help="skip ids already in the output file")
    b.add_argument("--quiet", action="store_true")
    b.add_argument("--engine", choices=["local", "ray"], default="local", help="ray: run on a Ray cluster; -o is then a folder of shards")
    b.add_argument("--address", default=None, help="--engine ray: the cluster (auto: the running one; default: a local one)")
    b.add_argument("--gpus-per-worker", type=float, default=0.0, help="--engine ray: GPUs per decision actor")
    b.add_argument("--shard-lines", type=int, default=1000, help="--engine ray: input lines per shard")
    _add_engine_opts(b)
    e = sub.add_parser("eval", help="score against a gold JSONL file (id, text, tags)")
    e.add_argument("gold")
    e.add_argument("--taxonomy", required=True)
    e.add_argument("--max-tags", type=int, default=None)
    e.add_argument("--errors", action="store_true", help="list wrong items with their evidence")
    e.add_argument("--summary", action="store_true", help="no per-tag table")
    e.add_argument("--json", default=None, metavar="FILE", help="also write the metrics as JSON")
    _add_engine_opts(e)
    tr = sub.add_parser("train", help="train a decision adapter (a decision head, or LoRA) on labelled READMEs")
    tr.add_argument("gold", help="labelled JSONL (id, text, tags)")
    tr.add_argument("--taxonomy", required=True)
    tr.add_argument("-o", "--output", required=True, metavar="DIR", help="new folder for the adapter and its card")
    tr.add_argument("--model", default=None, help="base model: Hugging Face id, local folder or .gguf (default: embedded SmolLM2-135M)")
    tr.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    tr.add_argument("--rules", default=None, metavar="DIR", help="rule pack folder (default: the built-in pack)")
    tr.add_argument("--excerpt-tokens", type=int, default=None, help="README tokens in a head's prompts (default 128; --lora: 256)")
    tr.add_argument("--dtype", choices=("both", *DTYPE_CHOICES), default="both",
                    help="dtype(s) the model's states are read in: both (default: bfloat16 and float32, fitted with a consistency "
                         "term so answers agree across machines), or one")
    from engine.training.head import TWIN_SHARE

    tr.add_argument("--twin-share", type=float, default=None, metavar="S",
                    help=f"with --dtype both: the share of READMEs also read in float32 for the consistency term (default "
                         f"{TWIN_SHARE:g}; all are read in bfloat16)")
    tr.add_argument("--ablations", action="store_true", help="also cross-validate the head on evidence only and on states only")
    tr.add_argument("--learn-rules", choices=("auto", "yes", "no"), default="auto",
                    help="learn a rule pack from the labels (cross-fitted) and train the head on its evidence; auto (default): "
                         "when the rule pack has rules for under half of the list's tags")
    tr.add_argument("--no-bridge", action="store_true",
                    help="the rule pack's rules serve only the tags it names, not other names of its concepts (kubernetes -> k8s)")
    tr.add_argument("--head", choices=("all", "rules", "model"), default="all",
                    help="what the decision head reads: evidence and model states (default), evidence only, or states only")
    tr.add_argument("--lora", action="store_true", help="fine-tune LoRA weights instead of a decision head (slow on CPU)")
    tr.add_argument("--epochs", type=int, default=2)
    tr.add_argument("--layers", type=int, default=6, help="top decoder layers that carry LoRA")
    tr.add_argument("--rank", type=int, default=16, help="LoRA rank (alpha = 2 x rank)")
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--folds", type=int, default=None, help="cross-validation folds that choose the settings (0: none; default 5, --lora 3)")
    tr.add_argument("--shortlist", type=int, default=None,
                    help="rule candidates shown to the model (default 8; 12 with a learned pack, whose top 8 hold fewer gold tags)")
    from engine.neighbours import ADDS as NEIGHBOUR_TAGS

    tr.add_argument("--neighbours", type=int, default=NEIGHBOUR_TAGS,
                    help=f"the adapter keeps an index of the labelled READMEs, whose vote is evidence for the head; it also adds "
                         f"its best N tags to the shortlist (default {NEIGHBOUR_TAGS})")
    tr.add_argument("--no-neighbours", action="store_true", help="keep no index of the labelled READMEs (no votes)")
    tr.add_argument("--any-list", nargs="?", const="", default=None, metavar="TAX.json",
                    help="also train the head the adapter decides with for tag lists it does not cover (zero labels, shared "
                         "weights only), on the labels seen as a list the rules know in part (the pack's rules for half its tags, "
                         "names and descriptions for all): this tag list with the same names and their "
                         "descriptions/aliases (default: --taxonomy's); it decides for lists described as this one. "
                         "Adds ~6 minutes for 800 READMEs")
    tr.add_argument("--fraction", type=float, default=1.0, help="train on this seeded share of the items (learning curves)")
    tr.add_argument("--quiet", action="store_true")
    sv = sub.add_parser("serve", help="HTTP service with dynamic batching (needs tagsmith[serve])")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--taxonomy", default=None, metavar="TAX.json", help="default tag list (requests may send their own)")
    sv.add_argument("--max-batch", type=int, default=32, help="items decoded together (default 32)")
    sv.add_argument("--max-wait-ms", type=float, default=10.0, help="how long a batch waits to fill (default 10)")
    sv.add_argument("--max-body-bytes", type=int, default=4 << 20, help="request body bound (default 4 MiB; 413 E108 beyond)")
    sv.add_argument("--max-call-items", type=int, default=256, help="items in one /v1/tag/batch call (default 256)")
    sv.add_argument("--max-queue", type=int, default=4096, help="items queued before 503 E601 (default 4096)")
    sv.add_argument("--drain-timeout", type=float, default=30.0, help="seconds SIGTERM waits for requests in flight (default 30)")
    sv.add_argument("--workers", type=int, default=0, help="lexicon worker processes (default 0: in the server process)")
    sv.add_argument("--access-log", action="store_true", help="log every request on stderr")
    _add_engine_opts(sv)
    lb = sub.add_parser("label", help="label READMEs on a local page (suggestions pre-checked, keyboard first), review a batch, compare annotators")
    lb.add_argument("input", nargs="?", default=None,
                    help="READMEs to label: anything batch reads (JSONL, CSV, a folder, -), or a --compare file to adjudicate")
    lb.add_argument("-o", "--output", default=None, metavar="LABELS.jsonl",
                    help="the label file: one line per decision, appended; reopening resumes (with --compare: the disagreements)")
    lb.add_argument("--taxonomy", default=None, metavar="TAX.json")
    lb.add_argument("--max-tags", type=int, default=3, help="at most N tags per README (default 3)")
    lb.add_argument("--order", choices=("file", "random", "uncertain"), default="file",
                    help="file (default), random (seeded), or uncertain: least sure first, with --random-share random picks")
    lb.add_argument("--random-share", type=float, default=0.2, help="--order uncertain: share of picks made at random, flagged (default 0.2)")
    lb.add_argument("--seed", type=int, default=0)
    lb.add_argument("--annotator", default=os.environ.get("USER", ""), help="written in each line (default: $USER)")
    lb.add_argument("--review", default=None, metavar="OUT.jsonl", help="walk a batch run's answers, least confident first")
    lb.add_argument("--input", dest="review_input", default=None, metavar="IN", help="--review: the batch run's input")
    lb.add_argument("--compare", nargs=2, default=None, metavar=("A.jsonl", "B.jsonl"),
                    help="print two annotators' agreement; -o writes the items to adjudicate")
    lb.add_argument("--format", choices=["auto", "jsonl", "csv"], default="auto")
    lb.add_argument("--id-col", default="id", help="CSV column with the id")
    lb.add_argument("--text-col", default="text", help="CSV column with the description")
    lb.add_argument("--host", default="127.0.0.1")
    lb.add_argument("--port", type=int, default=8008, help="0: any free port (the URL is printed)")
    lb.add_argument("--open", action="store_true", help="open the page in a browser")
    _add_engine_opts(lb)
    rp = sub.add_parser("report", help="HTML or Markdown report of a batch run")
    rp.add_argument("answers", help="OUT.jsonl written by tagsmith batch")
    rp.add_argument("--explain-dir", required=True, help="the --explain-dir of that run")
    rp.add_argument("--gold", default=None, help="gold JSONL (id, tags[, text]) for accuracy sections")
    rp.add_argument("--input", default=None, help="the batch input JSONL, for README texts and highlights")
    rp.add_argument("--format", choices=["html", "md"], default="html")
    rp.add_argument("-o", "--output", default="report.html")
    dr = sub.add_parser("doctor", help="versions, device, dtype and why, model, adapter and cache state (exit 1: not sound)")
    dr.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    dr.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto")
    dr.add_argument("--adapter", default=None, metavar="DIR", help="adapter to check (default: the shipped one)")
    dr.add_argument("--rules", default=None, metavar="DIR", help="rule pack to check (default: the built-in pack)")
    dr.add_argument("--json", action="store_true", help="one JSON object instead of text")
    gr = sub.add_parser("grammar", help="the answer language for a tag list and N, as a regex or a JSON Schema")
    gr.add_argument("--taxonomy", required=True, metavar="TAX.json")
    gr.add_argument("--max-tags", default="3", help="at most N tags (default 3)")
    gr.add_argument("--format", choices=("regex", "json-schema"), default="regex")
    r = sub.add_parser("rules", help="rule-pack tools")
    rs = r.add_subparsers(dest="rules_cmd", required=True)
    for name, help_ in (("check", "validate a pack"), ("test", "run each rule's examples")):
        x = rs.add_parser(name, help=help_)
        x.add_argument("dir", nargs="?", default=None)
    rs.add_parser("schema", help="print the JSON Schema of a rule-pack file")
    le = rs.add_parser("learn", help="learn a rule pack from labelled READMEs (terms with their support and precision)")
    le.add_argument("gold", help="labelled JSONL (id, text, tags)")
    le.add_argument("--taxonomy", required=True, metavar="TAX.json")
    le.add_argument("-o", "--output", required=True, metavar="PACK_DIR", help="new folder for the pack (learned.yaml)")
    le.add_argument("--extends", default=None, metavar="PACK", help="write the pack as an extension of this one (default: the built-in pack)")
    le.add_argument("--examples", choices=("texts", "written"), default="texts",
                    help="rule examples: a line of one of the tag's READMEs (default), or a sentence made from the term")
    br = rs.add_parser("bridge", help="which of a tag list's tags take the rules of the pack's concepts they name, and why")
    br.add_argument("dir", nargs="?", default=None, help="rule pack (default: the built-in pack)")
    br.add_argument("--taxonomy", required=True, metavar="TAX.json")
    br.add_argument("-o", "--output", default=None, metavar="PACK_DIR", help="also write the lent rules as an editable pack (bridged.yaml)")
    an = rs.add_parser("analyze", help="per-tag and per-term coverage and precision on a gold file")
    an.add_argument("gold", help="gold JSONL with id, text, tags")
    an.add_argument("dir", nargs="?", default=None)
    an.add_argument("--taxonomy", default=None, help="tag list (default: the tags of the pack)")
    an.add_argument("--min-fires", type=int, default=2)
    return p


def main(argv: list[str] | None = None) -> int:
    import signal

    if hasattr(signal, "SIGXFSZ"):
        # Past a file-size limit (ulimit -f) a write should fail with EFBIG, which the
        # batch job reports (E105), instead of the signal killing the process.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    args = build_parser().parse_args(argv)
    handler = {"tag": cmd_tag, "explain": cmd_explain, "batch": cmd_batch, "eval": cmd_eval, "train": cmd_train, "serve": cmd_serve, "label": cmd_label, "report": cmd_report, "rules": cmd_rules,
               "doctor": cmd_doctor, "grammar": cmd_grammar}[args.cmd]
    try:
        return handler(args)
    except TagsmithError as exc:
        print(f"tagsmith: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


def run() -> None:
    """The ``tagsmith`` command. After a one-shot answer (``tag``, ``explain``) the process
    ends at once: tearing down torch and the model costs ~1.3 s and changes nothing."""
    rc = main()
    if sys.argv[1:2] and sys.argv[1] in ("tag", "explain"):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (BrokenPipeError, OSError):
            pass
        os._exit(rc)
    sys.exit(rc)


if __name__ == "__main__":
    run()
