import sys
from pathlib import Path

# tests import small shared helpers (helpers_venv) from this folder
sys.path.insert(0, str(Path(__file__).resolve().parent))
