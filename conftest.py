"""Every test runs offline on the tiny models, in a private model home shared by the whole run
(notebook kernels started by nbval inherit these variables)."""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["CREATIVE_MAGICS_PROFILE"] = "tiny"
os.environ.setdefault("CREATIVE_MAGICS_HOME", os.path.join(tempfile.gettempdir(), "creative_magics_test_home"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
