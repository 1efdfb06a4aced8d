"""A fixture experiment module that fails to import (the runner must report it and go on)."""

raise ImportError("this fixture module is broken on purpose")
