"""What the pipeline needs to know about each data set: names, classes, how to say "class".

Import-cheap on purpose (standard library only: no NumPy, no TensorFlow), so the command line
can check a `--dataset`/`--digit`-style argument before anything heavy is loaded. Loading the
arrays is `mnist_cnn.data.load_dataset(name)`.

>>> class_index("fashion", "ankle-boot"), class_index("fashion", "6"), class_index("mnist", "4")
(9, 6, 4)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mnist_cnn.errors import UserError


class UnknownClassError(UserError, ValueError):
    """A class given by index or name that the data set does not have (one-line message)."""


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about one data set.

    Attributes
    ----------
    name : str
        The key used in code and on the command line ("mnist", "fashion").
    title : str
        How to write it in titles and messages ("MNIST", "Fashion-MNIST").
    class_names : tuple of str
        Name of each class, by label index.
    class_noun : str
        What one class is called in prose ("digit", "class").
    env_var : str
        Environment variable that names an explicit `.npz` with the four Keras arrays.
    aliases : dict
        Extra accepted spellings (already normalised: lower case, letters and digits only)
        mapped to the label index.
    """

    name: str
    title: str
    class_names: tuple
    class_noun: str
    env_var: str
    aliases: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_name(self, index: int) -> str:
        """The name of class `index` ("Shirt"; for MNIST the digit itself, "6")."""
        return self.class_names[index]

    @property
    def has_class_names(self) -> bool:
        """True where classes have names of their own (Fashion-MNIST), False for digits."""
        return any(name != str(index) for index, name in enumerate(self.class_names))

    def class_label(self, index: int) -> str:
        """`index` for people: "6 (Shirt)" where classes have names, "6" for digits."""
        name = self.class_names[index]
        return f"{index} ({name})" if self.has_class_names else name


def _norm(text: str) -> str:
    """Lower case, letters and digits only: 'T-shirt/top' -> 'tshirttop', 'Ankle boot' -> 'ankleboot'."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


MNIST = DatasetInfo(
    name="mnist", title="MNIST", class_names=tuple(str(d) for d in range(10)),
    class_noun="digit", env_var="MNIST_NPZ",
    aliases={w: i for i, w in enumerate(
        "zero one two three four five six seven eight nine".split())},
)

FASHION = DatasetInfo(
    name="fashion", title="Fashion-MNIST",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    class_noun="class", env_var="FASHION_NPZ",
    aliases={"tshirt": 0, "teeshirt": 0, "tee": 0, "top": 0, "trousers": 1, "pants": 1,
             "sweater": 2, "jumper": 2, "dresses": 3, "boot": 9, "boots": 9},
)

DATASETS = {d.name: d for d in (MNIST, FASHION)}
DATASET_NAMES = tuple(DATASETS)
_DATASET_ALIASES = {"mnist": "mnist", "digits": "mnist", "fashion": "fashion",
                    "fashionmnist": "fashion"}


def get_dataset(dataset) -> DatasetInfo:
    """The `DatasetInfo` for a name ("mnist", "fashion"; also "fashion-mnist") or itself."""
    if isinstance(dataset, DatasetInfo):
        return dataset
    key = _DATASET_ALIASES.get(_norm(str(dataset)))
    if key is None:
        raise UserError(f"unknown dataset {dataset!r}: use one of {', '.join(DATASET_NAMES)}")
    return DATASETS[key]


def class_index(dataset, text) -> int:
    """The label index of a class given as an index ("6", 6) or a name ("shirt", "T-shirt").

    Names are case-insensitive and ignore spaces and punctuation ("ankle-boot", "Ankle Boot",
    "tshirt" all work); a trailing plural "s" is accepted ("sneakers"), as are a few aliases
    (`DatasetInfo.aliases`).

    Raises
    ------
    UnknownClassError
        (a `UserError` and a `ValueError`) with one line listing what is valid.
    """
    info = get_dataset(dataset)
    n = info.num_classes
    if isinstance(text, int) and not isinstance(text, bool):
        if 0 <= text < n:
            return text
    elif isinstance(text, str):
        stripped = text.strip()
        if stripped.isascii() and stripped.isdigit():
            if int(stripped) < n:
                return int(stripped)
        else:
            table = {_norm(name): i for i, name in enumerate(info.class_names)}
            table.update(info.aliases)
            key = _norm(stripped)
            if key in table:
                return table[key]
            if key.endswith("s") and key[:-1] in table:
                return table[key[:-1]]
    valid = f"0-{n - 1}"
    if info.class_names != tuple(str(i) for i in range(n)):
        valid += f" or a name (case-insensitive): {', '.join(info.class_names)}"
    raise UnknownClassError(f"{info.title} has no {info.class_noun} {text!r}: use {valid}")
