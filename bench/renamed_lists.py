"""Catalogues tagsmith has no rules for, built from the home list (for bench/catalogues.py):
the same concepts under other names, or coarser.

- ``synonyms``: every tag renamed as another catalogue might name it (``lib`` ->
  ``library``, ``k8s`` -> ``kubernetes``); no default rule applies to any new name.
- ``codes``: every tag renamed to an opaque code (``c-017``): only descriptions and
  labels can tell what a tag means.
- ``coarse``: several of the 90 merged into broader tags (23 tags), each with a
  description written for it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SYNONYMS = {
    "3d": "3d-graphics", "agent": "ai-agents", "ai": "machine-learning", "algorithm": "algorithms-and-data-structures",
    "api": "web-apis", "authentication": "identity-and-login", "aws": "amazon-web-services", "backend": "server-side",
    "benchmark": "performance-measurement", "best-practices": "guidelines", "bitcoin": "btc", "blockchain": "web3",
    "blog": "blogging", "bundler": "asset-bundling", "cache": "caching", "chat": "messaging-apps",
    "cicd": "continuous-integration", "cli": "command-line-tool", "cloud-native": "cncf-ecosystem", "cms": "content-management",
    "compiler": "compilers-and-transpilers", "containerization": "containers", "crm": "customer-relations",
    "data": "data-engineering", "database": "databases", "declarative-gui ": "declarative-ui", "deploy-tool": "deployment",
    "desktop-app": "desktop-application", "dev-exp-lib": "developer-experience", "dev-tool": "developer-tools",
    "ecommerce": "online-shop", "editor": "text-editors", "emulator": "emulation", "filesystem": "file-systems",
    "finance": "money", "firmware": "embedded-systems", "for-fun": "just-for-fun", "framework": "app-framework",
    "frontend": "client-side-web", "game": "video-games", "game-engine ": "game-development", "graphql": "graph-query-api",
    "gui": "graphical-interface", "http": "http-protocol", "http-client": "request-library", "iac": "infrastructure-as-code",
    "ide": "code-environment", "iot": "internet-of-things", "json": "json-tools", "julian": "julia-language",
    "k8s": "kubernetes", "language": "programming-language", "learning-resource": "tutorials", "lib": "library",
    "linter": "static-analysis", "lms": "e-learning-platform", "logging": "logs", "low-code": "no-code",
    "message-queue": "message-broker", "mobile-app": "mobile", "monitoring": "alerting-and-metrics", "networking": "network",
    "node-version": "nodejs-versions", "nosql": "non-relational-db", "observability": "tracing-and-telemetry",
    "orm": "object-relational-mapping", "os": "operating-system", "parser": "parsing", "react": "reactjs",
    "real-time": "live-collaboration", "robot": "robotics", "runtime": "execution-environment", "sdk": "dev-kit",
    "search": "search-engine", "secrets": "credentials-management", "security": "infosec", "server": "self-hosted-service",
    "serverless": "functions-as-a-service", "storage": "object-storage", "system-design": "software-architecture",
    "terminal": "terminal-ui", "testing": "test-automation", "ui": "component-library", "ux": "usability",
    "video": "video-processing", "web-app": "browser-application", "web-server": "http-server", "webassembly": "wasm",
    "workflow": "workflow-automation", "yaml": "yaml-tools",
}

#: Broader tags: new name -> (members, description written for it).
COARSE = {
    "ai-ml": (["ai", "agent"], "machine learning, deep learning, LLMs, AI agents and their tooling"),
    "web-frontend": (["frontend", "react", "ui", "ux", "declarative-gui "], "client-side web and UI development: UI libraries, component kits, design systems, React, declarative UI, usability"),
    "web-backend": (["backend", "api", "graphql", "http", "http-client", "web-server", "server"], "server-side development, web APIs, HTTP servers and clients, GraphQL, self-hosted services"),
    "cloud-infra": (["k8s", "containerization", "cloud-native", "iac", "serverless", "aws", "deploy-tool"], "cloud infrastructure: Kubernetes, containers, Docker, infrastructure as code, serverless, AWS, deployment"),
    "devops": (["cicd", "workflow"], "CI/CD pipelines, workflow engines and automation of jobs"),
    "ops-visibility": (["monitoring", "observability", "logging"], "monitoring, metrics, alerting, tracing, telemetry and logging"),
    "data-stores": (["database", "nosql", "orm", "cache", "search", "storage"], "databases, SQL and NoSQL stores, ORMs, caches, search engines, object storage"),
    "data-processing": (["data", "message-queue"], "data processing, ETL, data science, dataframes, message brokers and streaming"),
    "crypto": (["blockchain", "bitcoin"], "blockchains, Bitcoin, smart contracts, crypto-currencies, web3"),
    "apps": (["web-app", "desktop-app", "mobile-app", "gui"], "end-user applications: web apps, desktop apps, mobile apps, GUI applications"),
    "command-line": (["cli", "terminal"], "command-line programs, terminal emulators, TUIs, shell customisation"),
    "developer-tooling": (["dev-tool", "dev-exp-lib", "ide", "editor", "linter", "testing", "benchmark"], "tools for developers: IDEs, editors, linters, test frameworks, benchmarks, debuggers, formatters, DX utilities"),
    "languages": (["language", "compiler", "runtime", "parser", "webassembly", "julian"], "programming languages, compilers, transpilers, runtimes, parsers, WebAssembly, Julia"),
    "javascript-build": (["bundler", "node-version"], "JavaScript build tooling: bundlers, asset pipelines, Node.js version managers"),
    "learning": (["learning-resource", "best-practices", "system-design", "algorithm"], "learning material: tutorials, courses, awesome lists, style guides, system design, algorithm collections"),
    "security-and-identity": (["security", "secrets", "authentication"], "security tools, cryptography, secrets management, authentication, OAuth, identity"),
    "graphics-and-media": (["3d", "video"], "3D graphics, rendering, meshes, video processing, players, streaming"),
    "games": (["game", "game-engine ", "emulator", "for-fun"], "games, game engines, emulators, toys and fun projects"),
    "business": (["crm", "ecommerce", "finance", "lms", "cms", "low-code", "blog"], "business software: CRM, e-commerce, finance, learning platforms, CMS, blogging, low-code builders"),
    "systems": (["os", "filesystem", "firmware", "networking", "iot", "robot"], "systems: operating systems, file systems, firmware, embedded, networking, IoT, robotics"),
    "communication": (["chat", "real-time"], "chat, messaging, real-time communication and collaboration"),
    "reusable-code": (["lib", "framework", "sdk"], "reusable code: libraries, packages, frameworks, SDKs"),
    "formats": (["json", "yaml"], "data formats: JSON and YAML parsing, schemas and tooling"),
}


def home(shared: Path) -> list[dict[str, Any]]:
    return json.loads((shared / "taxonomy-described.json").read_text())


def catalogue(kind: str, shared: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A described tag list of that kind and the map from home names to its names."""
    tags = home(shared)
    if kind == "home":
        return [{"id": t["id"], "name": t["name"]} for t in tags], {t["name"]: t["name"] for t in tags}
    if kind == "synonyms":
        mapping = {t["name"]: SYNONYMS[t["name"]] for t in tags}
        return [{"id": t["id"], "name": mapping[t["name"]], "description": t["description"]} for t in tags], mapping
    if kind == "codes":
        mapping = {t["name"]: f"c-{i:03d}" for i, t in enumerate(sorted(tags, key=lambda t: t["id"]))}
        return [{"id": t["id"], "name": mapping[t["name"]], "description": t["description"]} for t in tags], mapping
    if kind == "coarse":
        mapping = {m: new for new, (members, _) in COARSE.items() for m in members}
        missing = {t["name"] for t in tags} - set(mapping)
        assert not missing, missing
        return [{"id": i, "name": new, "description": d} for i, (new, (_, d)) in enumerate(COARSE.items())], mapping
    raise ValueError(kind)


def relabel(rows: list[dict[str, Any]], mapping: dict[str, str]) -> list[dict[str, Any]]:
    """Gold rows under the new names (merged tags collapse, order kept, at most 3)."""
    out = []
    for r in rows:
        tags = list(dict.fromkeys(mapping[t] for t in r.get("tags", [])))[:3]
        out.append({**r, "tags": tags})
    return out


def drop_names(tags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The list without descriptions or aliases (names only)."""
    return [{"id": t["id"], "name": t["name"]} for t in tags]
