"""`samples` and `archs`: what the library ships and offers."""
from __future__ import annotations

from multimodal.cli.common import emit
from multimodal.data.samples import SAMPLES
from multimodal.models.fusion import FUSION_METHODS


def cmd_samples(args) -> None:
    rows = [{"name": s.name, "title": s.title, "task": s.task, "target": s.target, "description": s.description}
            for s in SAMPLES.values()]
    emit({"samples": rows}, args.json, "\n".join(f"{r['name']:18} {r['task']:15} {r['title']}" for r in rows))


def cmd_archs(args) -> None:
    rows = [{"name": m.name, "title": m.title, "branches": list(m.branches), "origin": m.origin,
             "description": m.description, "params": {n: p.to_dict() for n, p in m.params.items()}}
            for m in FUSION_METHODS.values()]
    emit({"archs": rows}, args.json, "\n".join(f"{r['name']:14} {'+'.join(r['branches']):18} {r['title']}"
                                                for r in rows))
