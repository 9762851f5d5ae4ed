"""Imports point one way: magics and widgets -> api -> tasks -> media/results/loaders/cache -> leaves.

The graph is read statically (every `import`, also inside functions), so a lazy import inside a function
counts like any other; imports hidden behind importlib are not allowed at all.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "creative_magics"

# Lowest first. A module may import modules of its own layer and of the layers below, never above.
LAYERS = (
    ("leaves", ("errors", "_version", "limits", "seeds", "prompts", "paths", "defaults", "hub", "devices", "memory", "hf", "params", "sweeps", "nets.layers")),
    ("parts", ("models", "media", "recipes", "audio", "midi", "synth", "results", "previews", "corpus", "finetuned", "loaders", "cache", "tiny", "nets",
               "remote", "gguf_models", "footprint", "prompt_weights", "controls", "fast")),
    ("tasks", ("tasks",)),
    ("state", ("settings", "session")),
    ("references", ("refs",)),
    ("api", ("api", "batches", "ray_pool")),
    ("views", ("views",)),
    ("front", ("magics", "control", "widgets")),
)


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path, path.name == "__init__.py"


def imports_of(name, path, is_package, known):
    """The package's own modules that `name` imports (relative and absolute forms)."""
    here = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name.removeprefix("creative_magics.") for alias in node.names if alias.name.startswith("creative_magics.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = here.split(".") if here else []
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join(anchor + ([node.module] if node.module else []))
            elif (node.module or "").startswith("creative_magics"):
                base = node.module.removeprefix("creative_magics").lstrip(".")
            else:
                continue
            targets = [base] + [f"{base}.{alias.name}".lstrip(".") for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph():
    found = list(modules())
    known = {name for name, _, _ in found} - {""}
    return {name: imports_of(name, path, is_package, known) for name, path, is_package in found if name}


def layer_of(module):
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[0]


def cycles(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    for module in graph():
        layer_of(module)


def test_no_import_points_upward():
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_no_import_cycles():
    edges = {module: {t for t in targets if not (t.startswith(module + ".") and module in ("tasks", "tiny", "nets", "widgets"))}
             for module, targets in graph().items()}
    assert cycles(edges) == []


def test_tasks_never_reach_the_notebook_side():
    for module, targets in graph().items():
        if module.startswith("tasks"):
            assert not targets & {"session", "settings", "api", "refs", "magics", "control", "views", "widgets"}, (module, targets)


def test_no_import_hides_behind_importlib():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "import_module(" not in text and "__import__(" not in text, path


def test_the_graph_sees_lazy_imports():
    """A check that cannot fail would prove nothing: the api does import the tasks, inside its functions."""
    edges = graph()
    assert "tasks.story" in edges["api"] and "session" in edges["refs"] and "params" in edges["magics"]
