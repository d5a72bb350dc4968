"""The package's shape: a module imports only modules above it in the order data flows (so there is no import
cycle), nothing in the library imports the command line, and generation never imports TensorFlow."""
import ast
import subprocess
import sys

from conftest import REPO

PACKAGE = REPO / "lstm_textgen"
# The order of README's development section: each module may import only those before it.
ORDER = ["errors", "", "usertext", "values", "config", "stamp", "atomic", "outputs", "quiet", "memory", "corpus", "bpe", "tokenizer", "tokens", "data",
         "vectors", "embeddings", "model", "fast", "fast.h5", "rundir", "state", "runlock", "curves", "finetune", "resume", "fast.lstm",
         "fast.step", "fast.stepper", "rules", "sample", "callbacks", "validation", "schedules", "monitor", "distribute",
         "training", "evaluate",
         "novelty", "interactive", "report", "serve", "serve.scheduler", "serve.protocol", "serve.replies", "serve.app", "serve.server",
         "cli.base", "cli.train", "cli.generate", "cli.report", "cli.serve", "cli",
         "__main__"]


def module_name(path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path) -> set[str]:
    """The lstm_textgen modules a file imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lstm_textgen"):
            base = node.module.removeprefix("lstm_textgen").lstrip(".")
            for alias in node.names:
                child = f"{base}.{alias.name}".lstrip(".")
                found.add(child if (PACKAGE / f"{child.replace('.', '/')}.py").exists()
                          or (PACKAGE / child.replace(".", "/")).is_dir() else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("lstm_textgen").lstrip(".") for a in node.names
                      if a.name.startswith("lstm_textgen")}
    return found


def test_every_module_is_in_the_order():
    assert sorted(module_name(p) for p in PACKAGE.rglob("*.py")) == sorted(ORDER)


def test_modules_import_only_modules_above_them():
    back_edges = []
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        for imported in imports_of(path) - {name}:
            if ORDER.index(imported) >= ORDER.index(name):
                back_edges.append(f"{name} imports {imported}")
    assert not back_edges


def test_generation_and_reading_runs_never_import_tensorflow():
    code = ("import sys\nimport lstm_textgen.sample, lstm_textgen.interactive, lstm_textgen.report, "
            "lstm_textgen.novelty, lstm_textgen.curves, lstm_textgen.serve.server, lstm_textgen.cli\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
