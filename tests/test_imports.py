"""The package's shape: folders that are the stages of the pipeline, each importing only from the stages below it
(and the root's small modules), no import cycle inside a folder, at most about ten modules a folder, nothing in
the library importing the command line, and generation never importing TensorFlow."""
import ast
import subprocess
import sys

from conftest import REPO

PACKAGE = REPO / "lstm_textgen"
# The stages, lowest first: a module may import the root, its own folder and the folders before its own.
STAGES = ["", "config", "text", "model", "run", "generation", "training", "serve", "export", "cli"]
ROOT = {"", "__main__", "errors", "atomic", "outputs", "usertext"}
MAX_MODULES = 10


def module_name(path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> int:
    if module == "__main__":
        return len(STAGES)  # `python -m lstm_textgen` runs the command line: above everything
    folder = module.split(".")[0] if "." in module or module in STAGES else ""
    return STAGES.index(folder)


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


MODULES = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_sits_in_a_stage_folder_or_is_one_of_the_roots_few():
    roots = {m for m in MODULES if "." not in m and m not in STAGES}
    assert roots <= ROOT, roots - ROOT
    assert {m.split(".")[0] for m in MODULES if "." in m} <= set(STAGES)


def test_modules_import_only_their_stage_and_the_stages_below():
    upward = [f"{name} imports {imported}" for name, imported_set in MODULES.items() for imported in imported_set
              if imported != name and stage(imported) > stage(name)]
    assert not upward


def test_no_import_cycle_inside_a_folder_or_the_root():
    def folder(module: str) -> str:
        return module.rpartition(".")[0] if "." in module else ""

    def cycle_from(module, path):
        for imported in MODULES.get(module, ()):
            if imported == module or folder(imported) != folder(module) or imported in STAGES:
                continue
            if imported in path:
                return path[path.index(imported):] + [imported]
            found = cycle_from(imported, path + [imported])
            if found:
                return found
        return None

    cycles = [cycle for module in MODULES if (cycle := cycle_from(module, [module]))]
    assert not cycles, cycles[0]


def test_each_folder_holds_at_most_about_ten_modules():
    for folder in STAGES[1:]:
        modules = [p for p in (PACKAGE / folder).glob("*.py") if p.name != "__init__.py"]
        assert 0 < len(modules) <= MAX_MODULES, (folder, len(modules))


def test_generation_and_reading_runs_never_import_tensorflow():
    code = ("import sys\nimport lstm_textgen.generation.sample, lstm_textgen.generation.interactive, "
            "lstm_textgen.run.report, lstm_textgen.generation.novelty, lstm_textgen.run.curves, "
            "lstm_textgen.serve.server, lstm_textgen.cli\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


MAX_LINES, MAX_FUNCTION_LINES = 300, 60
TESTS = REPO / "tests"


def test_every_module_has_its_test_file_where_the_module_sits():
    """lstm_textgen/<stage>/<module>.py is tested in tests/<stage>/test_<module>.py (the root's in tests/);
    cross-cutting tests (hostile input, damaged runs, old runs, whole journeys) have files of their own."""
    missing = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        folder = path.parent.relative_to(PACKAGE)
        name = "test_main.py" if path.stem == "__main__" else f"test_{path.stem}.py"
        if not (TESTS / folder / name).is_file():
            missing.append(str(path.relative_to(REPO)))
    assert not missing


def test_modules_and_functions_stay_short():
    long_modules, long_functions = [], []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > MAX_LINES:
            long_modules.append(f"{path.relative_to(PACKAGE)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if node.end_lineno - first + 1 > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert not long_modules and not long_functions, (long_modules, long_functions)
