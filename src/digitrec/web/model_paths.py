"""Which files admin reload may load: a model file (`model.onnx`, or a run folder holding one) under the
configured folders (`model_dirs`: the settings' model_dirs, $DIGITREC_MODEL_DIRS, the served model's folder,
the bundled one).

Everything is decided from the path and `stat`, before anything is opened: a device, a pipe or a socket
would block or stream for ever, and a path outside the folders is not the admin's to read through us.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from starlette.exceptions import HTTPException

from digitrec.inference.predictor import MODEL_FILE
from digitrec.paths import BUNDLED_DIR

MODEL_DIRS_ENV = "DIGITREC_MODEL_DIRS"


def model_dirs(given: Iterable[Path], served: str | os.PathLike[str]) -> tuple[Path, ...]:
    """Folders admin reload may load from: the given ones, the served model's folder and the bundled one,
    symlinks resolved. Fixed at start: a reload does not widen them."""
    return tuple(dict.fromkeys(p.resolve() for p in [*given, Path(served).parent, Path(BUNDLED_DIR)]))


def allowed_model_path(given: str, folders: Iterable[Path]) -> Path:
    """The resolved ONNX file `given` names, or an HTTPException: 403 outside `folders`, 400 otherwise."""
    folders = tuple(folders)
    if not given or "\x00" in given:
        raise HTTPException(400, "model must be a path to a model.onnx file or a run folder.")
    path = Path(given).expanduser()
    resolved = path.resolve()  # symlinks followed: a link inside the folders to a file outside is outside
    if not any(resolved.is_relative_to(folder) for folder in folders):
        names = ", ".join(str(f) for f in folders)
        raise HTTPException(403, f"{given} is outside the model folders ({names}); put the model there or add "
                                 f"its folder to {MODEL_DIRS_ENV} on the server.")
    try:
        mode = os.stat(resolved).st_mode
        if stat.S_ISDIR(mode):
            resolved = resolved / MODEL_FILE
            mode = os.stat(resolved).st_mode
    except OSError:
        raise HTTPException(400, f"{given} does not exist; give a model.onnx file or a run folder.") from None
    if not stat.S_ISREG(mode):
        raise HTTPException(400, f"{given} is not a regular file (a device, a pipe or a socket?); give a "
                                 "model.onnx file or a run folder.")
    if resolved.suffix != ".onnx":
        raise HTTPException(400, f"{given} is not an ONNX model (.onnx); give a model.onnx file or a run folder.")
    return resolved
