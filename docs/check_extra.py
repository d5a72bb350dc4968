"""`make docs` runs this first: the docs build needs the docs extra (MkDocs, Material, mkdocs-click) and the
package itself; without them it prints one line saying how to install them and exits 1."""
import sys

PACKAGES = {"mkdocs": "mkdocs", "material": "mkdocs-material", "mkdocs_click": "mkdocs-click",
            "lstm_textgen": "lstm-textgen"}  # the reference pages are read off the package's code

try:
    for module in PACKAGES:
        __import__(module)
except ImportError as e:
    print(f"Error: the docs need the docs extra ({PACKAGES.get(e.name or '', e.name)} is not installed); install "
          "it with: .venv/bin/pip install -e '.[docs]'", file=sys.stderr)
    sys.exit(1)
