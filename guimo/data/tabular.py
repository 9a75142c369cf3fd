"""Tables for the tabular scenarios: reading, column typing, encoding, public loaders and splits.

- ``read_table(path)``: a CSV/TSV or Parquet file (or a URL) as a pandas DataFrame; a malformed CSV
  line is a GuimoError naming the file and the line.
- ``infer_columns(df, target)``: which columns are numeric features, which categorical, which are
  left out (id-like columns, constants, the time column) and why, and the task the target implies.
- ``TableEncoder``: fitted on the training rows only, it turns a frame into the model's inputs
  ``x_num`` float32 (N, n_num), ``x_cat`` int64 (N, n_cat) and ``y``; it round-trips through JSON so
  a predictor rebuilds it without pickle.
- Loaders: ``load_german_credit`` (with the 5:1 cost matrix), ``load_paysim`` (with or without the
  balance columns that leak the label), ``breast_cancer`` and ``diabetes`` (scikit-learn's copies).
- Splits: ``time_split`` (transactions: train on the past, test on the future) and
  ``stratified_folds`` / ``stratified_split`` (everything else).

pandas and scikit-learn come from the ``tabular`` extra and are imported inside the functions that
need them, so ``import guimo`` stays fast.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from guimo.errors import GuimoError, where

if TYPE_CHECKING:
    import pandas as pd

TASKS = ("binary", "multiclass", "regression")
MAX_CLASSES = 20  # an integer target with at most this many distinct values is a class label, else a quantity
ID_UNIQUE_RATIO = 0.9  # a text column with (almost) one value per row identifies the row; it cannot generalise
MISSING = "<missing>"  # the category a missing categorical value gets when the training rows had one
UNKNOWN_INDEX = 0  # every categorical vocabulary reserves index 0 for values unseen (or too rare) in training

# Public copies, pinned to a commit and checked against the digest recorded in ../shared/data/*/SOURCE.md.
GERMAN_CREDIT_URL = ("https://raw.githubusercontent.com/jbrownlee/Datasets/d20fcb6402ae34e653d4513b00f39257bb37ed7f/"
                     "german.csv#sha256=ec12a88b9fc14d74ba646ea0410cf7ff4533bec2eb61652f8ad76796bbfec017")
PAYSIM_SAMPLE_URL = ("https://raw.githubusercontent.com/Shivam-processing/SQL_FraudDetect/"
                     "e09144be4da8af900a2bb82293a3b54491dad2a5/data/paysim_sample.csv"
                     "#sha256=ce343649c90e33214d15e10dad01c5e251ff9b0a6edc419855991e559dcc71d7")


# ---------------------------------------------------------------------------------------------- reading

def _pandas():
    try:
        import pandas as pd
    except ImportError:
        raise GuimoError('tabular data needs pandas: pip install "guimo[tabular]"') from None
    return pd


def _local(source: str | Path) -> Path:
    from guimo.data.fetch import fetch, is_url

    return fetch(str(source)) if is_url(str(source)) else Path(source)


def csv_error(path: str | Path, e: Exception) -> GuimoError:
    """pandas' ParserError (``Expected 7 fields in line 6, saw 9``; the line counts from the file's start,
    also when reading in chunks) as a GuimoError naming the file and line."""
    m = re.search(r"line (\d+)", str(e))
    detail = re.sub(r"^Error tokenizing data\. C error: ", "", str(e)).strip()
    return GuimoError(f"{where(path, int(m.group(1)) if m else None)}: malformed CSV ({detail})")


def read_table(path: str | Path, *, header: int | None = 0, names: Sequence[str] | None = None) -> "pd.DataFrame":
    """Read a CSV/TSV (``.csv``, ``.tsv``, ``.txt``, gzip too) or Parquet (``.parquet``, ``.pq``) file.

    ``header=None`` with ``names`` reads a file without a header row. A row with the wrong number of
    fields, bytes that are not UTF-8, or broken quoting is a GuimoError naming the file and line.
    """
    pd = _pandas()
    path = _local(path)
    if not path.exists():
        raise GuimoError(f"{path}: file not found")
    if path.is_dir():
        raise GuimoError(f"{path}: a folder; give the CSV or Parquet file inside it")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise GuimoError(f'{path}: reading Parquet needs pyarrow: pip install "guimo[parquet]"') from None
        except Exception as e:  # pyarrow raises its own ArrowInvalid for a corrupt file
            raise GuimoError(f"{path}: not a readable Parquet file ({e})") from None
    sep = "\t" if ".tsv" in suffixes else ","
    try:
        df = pd.read_csv(path, sep=sep, header=header, names=names, skipinitialspace=True, encoding="utf-8-sig")  # -sig: a spreadsheet's byte-order mark is not part of the first name
    except pd.errors.ParserError as e:
        raise csv_error(path, e) from None
    except pd.errors.EmptyDataError:
        raise GuimoError(f"{path}: empty file, expected a header row and data rows") from None
    except UnicodeDecodeError as e:
        data = path.read_bytes()
        line = data[: e.start].count(b"\n") + 1 if len(data) > e.start else None
        raise GuimoError(f"{where(path, line)}: not UTF-8 text ({e.reason})") from None
    if len(df) == 0:
        raise GuimoError(f"{path}: no data rows")
    return df


# ---------------------------------------------------------------------------------------------- columns

@dataclass
class Columns:
    """The roles of a table's columns, decided once on the training data and saved with the run."""

    target: str
    numeric: list[str]  # features scaled as numbers
    categorical: list[str]  # features looked up in a vocabulary
    dropped_ids: list[str]  # id-like columns left out of training (one value per row, or an id's name); reported
    task: str  # "binary" | "multiclass" | "regression"
    classes: list = field(default_factory=list)  # target values in label order; for binary, classes[1] is the positive class
    time_column: str | None = None  # orders rows for time_split; never a feature (the future lies outside its range)
    dropped: dict[str, str] = field(default_factory=dict)  # every column left out (ids too) -> why

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Columns":
        return cls(**d)


def _name_tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))  # camelCase -> camel Case
    return [t for t in re.split(r"[^0-9A-Za-z]+", spaced.lower()) if t]


ID_MIN_DISTINCT = 50  # an id-named or code-like text column with this many values is a key (accounts), not a category
_CODE = r"[A-Za-z]{0,4}[-_ ]?\d{5,}"  # C1231006815, ACC-000123: letters then a long number
_DATE = r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}"  # 2026-12-07, 07/12/2026, 7.12.26 (with or without a time)
_ID_TOKENS = {"id", "ids", "uuid", "guid", "no", "nr", "num", "number", "key", "iban", "account", "acct"}
_ID_NAMES = {"name", "email", "phone", "ssn", "rowid", "index"}
_ID_WORDS = {"uid", "pid", "cid", "sid", "oid", "userid", "custid", "customerid", "clientid", "accountid", "msisdn"}


def looks_like_id_name(name: str) -> bool:
    """``customer_id``, ``accountNo``, ``uuid``, ``account_number``, ``nameOrig``: the last word is an id's,
    or the first is ``name``/``email`` (``number_of_children`` and ``paid`` are not)."""
    tokens = _name_tokens(name)
    if not tokens:
        return False
    return tokens[-1] in _ID_TOKENS or tokens[0] in _ID_NAMES or (len(tokens) == 1 and tokens[0] in _ID_WORDS)


def _id_reason(s: "pd.Series") -> str | None:
    """Why ``s`` identifies rows rather than describing them, or None. Ids carry no signal that
    generalises to new rows; a model that memorises them looks good in CV and fails in production."""
    pd = _pandas()
    values = s.dropna()
    if len(values) == 0:
        return None
    unique = values.nunique()
    ratio = unique / len(values)
    id_name = looks_like_id_name(s.name)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        integral = bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))
        if not integral:
            return None  # measured quantities (amounts, lab values) are features even when every value differs
        if unique == len(values) and len(values) >= 20:
            span = float(values.max()) - float(values.min()) + 1
            if id_name or values.is_monotonic_increasing or span <= 1.5 * len(values):  # a key, or row numbers
                return f"integer with a different value in each of the {len(values)} rows"
            # else: a wide-ranging quantity (salaries in whole euros) that happens not to repeat in this sample
        if id_name and ratio >= ID_UNIQUE_RATIO and len(values) >= 20:
            return f"named like an id, {unique} distinct integers in {len(values)} rows"
        return None
    text = values.astype(str)
    if len(values) >= 20 and ratio >= ID_UNIQUE_RATIO:
        return f"text with {unique} distinct values in {len(values)} rows"
    if unique >= ID_MIN_DISTINCT and id_name:
        return f"named like an id, {unique} distinct values"
    if unique >= ID_MIN_DISTINCT and text.str.fullmatch(_CODE).mean() > 0.95:
        return f"account-number-like codes, {unique} distinct values"
    return None


def _class_value(v: Any) -> Any:
    """A target value as a JSON scalar; integral numbers become ints so ``1.0`` in one file and ``1``
    in another are the same class."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return int(v) if float(v).is_integer() else float(v)
    return str(v)


def infer_columns(df: "pd.DataFrame", target: str, *, drop: Sequence[str] = (), time_column: str | None = None,
                  task: str | None = None, source: str | Path | None = None) -> Columns:
    """Decide the role of every column of ``df`` (the training data, or all of it before splitting).

    The task: a non-numeric or boolean target, or an integral one with at most ``MAX_CLASSES`` values, is a
    class label (``binary`` with two, else ``multiclass``); any other numeric target is ``regression``.
    ``task`` forces one. Left out of the features, each with its reason in ``dropped``: the columns in
    ``drop``, the ``time_column``, id-like columns (also listed in ``dropped_ids``) and constant columns.
    ``source`` (the file) only makes error messages name where the data came from.
    """
    pd = _pandas()
    origin = f"{source}: " if source else ""
    cols = [str(c) for c in df.columns]
    if target not in df.columns:
        raise GuimoError(f"{origin}no target column {target!r}; the columns are: {', '.join(cols)} "
                         f"(set data.target=COLUMN)")
    for name, what in [(c, "drop") for c in drop] + ([(time_column, "time_column")] if time_column else []):
        if name not in df.columns:
            raise GuimoError(f"{origin}{what} names {name!r}, which is not a column; the columns are: {', '.join(cols)}")
    if task is not None and task not in TASKS:
        raise GuimoError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    y = df[target]
    if (missing := int(y.isna().sum())):
        first = int(np.flatnonzero(y.isna().to_numpy())[0])
        raise GuimoError(f"{origin}target column {target!r} is empty in {missing} rows (first: data row {first + 1}); "
                         f"drop those rows or choose another target")
    values = y.unique()
    if len(values) < 2:
        raise GuimoError(f"{origin}target column {target!r} has one value only ({values[0]!r} in all {len(y)} rows): "
                         f"there is nothing to predict")
    numeric_y = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if task is None:
        integral = numeric_y and bool(np.all(np.mod(y.to_numpy(dtype=float), 1) == 0))
        if not numeric_y or (integral and len(values) <= MAX_CLASSES):
            task = "binary" if len(values) == 2 else "multiclass"
        else:
            task = "regression"
    elif task == "regression" and not numeric_y:
        raise GuimoError(f"{origin}task regression needs a numeric target; {target!r} holds {y.dtype} values")
    elif task == "binary" and len(values) != 2:
        raise GuimoError(f"{origin}task binary needs two target values; {target!r} has {len(values)}")
    classes: list = []
    if task != "regression":
        classes = sorted({_class_value(v) for v in values}, key=lambda v: (isinstance(v, str), v))

    dropped: dict[str, str] = {c: "asked to drop" for c in drop}
    if time_column:
        dropped[time_column] = "time column (orders the split; not a feature)"
    dropped_ids: list[str] = []
    numeric: list[str] = []
    categorical: list[str] = []
    for c in df.columns:
        if c == target or c in dropped:
            continue
        s = df[c]
        if s.nunique(dropna=False) <= 1:
            dropped[c] = "constant"
            continue
        if pd.api.types.is_datetime64_any_dtype(s) or (
                not pd.api.types.is_numeric_dtype(s) and s.dropna().astype(str).str.match(_DATE).mean() > 0.95):
            dropped[c] = "date or time (as text it cannot generalise: pass it as time_column, or derive features from it)"
            continue
        if (reason := _id_reason(s)):
            dropped[c] = f"id-like: {reason}"
            dropped_ids.append(c)
            continue
        (numeric if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) else categorical).append(c)
    if not numeric and not categorical:
        raise GuimoError(f"{origin}no feature columns left besides the target {target!r} "
                         f"(left out: {', '.join(f'{k} ({v})' for k, v in dropped.items()) or 'none'})")
    return Columns(target=target, numeric=numeric, categorical=categorical, dropped_ids=dropped_ids, task=task,
                   classes=classes, time_column=time_column, dropped=dropped)


# ---------------------------------------------------------------------------------------------- encoding

@dataclass
class NumericStats:
    """How one numeric column is scaled: ``fill`` replaces a missing value (the training median);
    ``quantiles`` (quantile scaling) or ``mean``/``std`` (standard scaling)."""

    name: str
    fill: float
    mean: float = 0.0
    std: float = 1.0
    quantiles: list[float] = field(default_factory=list)
    missing_indicator: bool = False  # the training rows had missing values: the model gets a 0/1 column for them


def _quantile_normal(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Map ``x`` through the empirical CDF given by ``q`` (equally spaced quantiles) to a standard
    normal, as scikit-learn's QuantileTransformer does: averaging the forward and backward
    interpolation puts a value repeated across several quantiles in the middle of its range."""
    from scipy.special import ndtri

    p = np.linspace(0.0, 1.0, len(q))
    u = 0.5 * (np.interp(x, q, p) - np.interp(-x, -q[::-1], -p[::-1]))
    eps = 1e-7
    return ndtri(np.clip(u, eps, 1 - eps))


class TableEncoder:
    """Turns a frame into model inputs. Fit it on the training rows only (validation and test rows
    must not leak into medians, quantiles or vocabularies).

    - Numeric columns: non-numbers, NaN and +-inf count as missing and become the training median,
      plus a 0/1 missing-indicator column for each column that had missing values in training (so
      "not measured" stays visible to the model). Then quantile scaling to a standard normal
      (``scaling="quantile"``, robust to the heavy tails of amounts) or ``(x - mean) / std``
      (``"standard"``).
    - Categorical columns: a vocabulary of the training values seen at least ``min_frequency`` times;
      index 0 is the unknown bucket for everything else (new merchants, rare codes). A missing value
      is the category ``<missing>``.
    - The target: class indices into ``columns.classes`` (int64), or float32 values for regression.
    """

    def __init__(self, columns: Columns, numeric: list[NumericStats], vocabularies: dict[str, list[str]],
                 scaling: str = "quantile"):
        self.columns = columns
        self.numeric = numeric
        self.vocabularies = vocabularies
        self.scaling = scaling
        self._index = {c: {v: i + 1 for i, v in enumerate(vocab)} for c, vocab in vocabularies.items()}
        self._class_index = {v: i for i, v in enumerate(columns.classes)}

    @classmethod
    def fit(cls, df: "pd.DataFrame", columns: Columns, *, scaling: str = "quantile", n_quantiles: int = 1000,
            min_frequency: int = 1) -> "TableEncoder":
        if scaling not in ("quantile", "standard"):
            raise GuimoError(f"unknown scaling {scaling!r}; choose quantile or standard")
        stats = []
        for c in columns.numeric:
            x = _numeric(df, c)
            ok = np.isfinite(x)
            v = x[ok]
            if len(v) == 0:
                raise GuimoError(f"numeric column {c!r} has no values in the training rows")
            st = NumericStats(name=c, fill=float(np.median(v)), mean=float(v.mean()), std=float(v.std()) or 1.0,
                              missing_indicator=bool((~ok).any()))
            if scaling == "quantile":
                st.quantiles = np.quantile(v, np.linspace(0, 1, min(n_quantiles, len(v)))).tolist()
            stats.append(st)
        vocabularies = {}
        for c in columns.categorical:
            counts = _categories(df[c]).value_counts()
            kept = counts[counts >= min_frequency]
            vocabularies[c] = sorted(str(v) for v in kept.index)
        return cls(columns, stats, vocabularies, scaling)

    @property
    def feature_names(self) -> list[str]:
        """Names of the columns of ``x_num`` then ``x_cat``, in order (what explanations attribute to)."""
        return self.numeric_names + list(self.columns.categorical)

    @property
    def numeric_names(self) -> list[str]:
        return [s.name for s in self.numeric] + [f"{s.name}__missing" for s in self.numeric if s.missing_indicator]

    @property
    def n_num(self) -> int:
        return len(self.numeric_names)

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table size per categorical column: its vocabulary plus the unknown bucket."""
        return [len(self.vocabularies[c]) + 1 for c in self.columns.categorical]

    def transform(self, df: "pd.DataFrame") -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(x_num float32 (N, n_num), x_cat int64 (N, n_cat), y)``; ``y`` is None when the frame has no
        target column (rows to score)."""
        absent = [c for c in self.columns.features if c not in df.columns]
        if absent:
            raise GuimoError(f"the rows lack the feature columns {', '.join(absent)} that the model was trained on "
                             f"(they have: {', '.join(map(str, df.columns))})")
        n = len(df)
        scaled, indicators = [], []
        for st in self.numeric:
            x = _numeric(df, st.name)
            bad = ~np.isfinite(x)
            x = np.where(bad, st.fill, x)
            if self.scaling == "quantile":
                x = _quantile_normal(x, np.asarray(st.quantiles))
            else:
                x = (x - st.mean) / st.std
            scaled.append(x)
            if st.missing_indicator:
                indicators.append(bad.astype(np.float64))
        x_num = np.stack(scaled + indicators, axis=1).astype(np.float32) if scaled else np.zeros((n, 0), np.float32)
        cats = []
        for c in self.columns.categorical:
            index = self._index[c]
            cats.append(np.fromiter((index.get(v, UNKNOWN_INDEX) for v in _categories(df[c])), dtype=np.int64, count=n))
        x_cat = np.stack(cats, axis=1) if cats else np.zeros((n, 0), np.int64)
        return x_num, x_cat, self.encode_target(df) if self.columns.target in df.columns else None

    def encode_target(self, df: "pd.DataFrame") -> np.ndarray:
        y = df[self.columns.target]
        if self.columns.task == "regression":
            return _numeric(df, self.columns.target).astype(np.float32)
        out = np.empty(len(y), dtype=np.int64)
        for i, v in enumerate(y.to_numpy()):
            key = _class_value(v) if not (isinstance(v, float) and math.isnan(v)) else None
            if key not in self._class_index:
                raise GuimoError(f"target column {self.columns.target!r}, data row {i + 1}: value {v!r} is not one of "
                                 f"the classes seen in training ({', '.join(map(str, self.columns.classes))})")
            out[i] = self._class_index[key]
        return out

    def to_json(self) -> dict:
        return {"columns": self.columns.to_json(), "scaling": self.scaling,
                "numeric": [asdict(s) for s in self.numeric], "vocabularies": self.vocabularies}

    @classmethod
    def from_json(cls, d: dict) -> "TableEncoder":
        try:
            return cls(Columns.from_json(d["columns"]), [NumericStats(**s) for s in d["numeric"]],
                       {k: list(v) for k, v in d["vocabularies"].items()}, d.get("scaling", "quantile"))
        except (KeyError, TypeError) as e:
            raise GuimoError(f"not a saved TableEncoder ({e})") from None


def _numeric(df: "pd.DataFrame", column: str) -> np.ndarray:
    """A column as float64 with NaN for missing; a non-number where a number belongs is an error
    naming the column, the row and the value."""
    pd = _pandas()
    s = df[column]
    x = pd.to_numeric(s, errors="coerce")
    bad = x.isna() & s.notna()
    if bad.any():
        if isinstance(s.dtype, pd.StringDtype) or s.dtype == object:
            stripped = s.astype("string").str.strip()
            bad = bad & ~stripped.isin(["", "NA", "NaN", "nan", "null", "None", "?"])  # common spellings of "missing"
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise GuimoError(f"column {column!r}, data row {i + 1}: {s.iloc[i]!r} is not a number")
    return x.to_numpy(dtype=np.float64, na_value=np.nan)


def _categories(s: "pd.Series") -> "pd.Series":
    """Values as the strings a vocabulary holds; missing as ``<missing>``; integral floats without ``.0``."""
    return s.map(lambda v: MISSING if v is None or (isinstance(v, float) and math.isnan(v)) else str(_class_value(v)))


# ---------------------------------------------------------------------------------------------- loaders

GERMAN_COLUMNS = ["checking_status", "duration_months", "credit_history", "purpose", "credit_amount", "savings",
                  "employment_since", "installment_rate", "personal_status_sex", "other_debtors", "residence_since",
                  "property", "age", "other_installment_plans", "housing", "existing_credits", "job",
                  "people_liable", "telephone", "foreign_worker"]
GERMAN_TARGET = "bad_credit"
# cost_matrix[true][predicted] over the classes [0 = good, 1 = bad] (german.names): calling a bad customer
# good costs 5, turning a good customer away costs 1.
GERMAN_COST_MATRIX = [[0.0, 1.0], [5.0, 0.0]]


def load_german_credit(path: str | Path | None = None) -> tuple["pd.DataFrame", str, list[list[float]]]:
    """UCI Statlog German credit: 1,000 applicants, 7 numeric and 13 coded categorical attributes.

    ``path``: the comma-separated ``german.csv`` without a header (as in ../shared/data/german_credit),
    a CSV with a header that has ``bad_credit``, or None to download the pinned copy. Returns the frame,
    the target column ``bad_credit`` (1 = bad risk, the positive class; the file codes 1 good, 2 bad) and
    the cost matrix ``[[0, 1], [5, 0]]`` indexed [true][predicted].
    """
    path = _local(path or GERMAN_CREDIT_URL)
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    if GERMAN_TARGET in first:
        df = read_table(path)
    else:
        df = read_table(path, header=None, names=GERMAN_COLUMNS + ["class"])
        bad = ~df["class"].isin([1, 2])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise GuimoError(f"{where(path, i + 1)}: the last column (class) must be 1 (good) or 2 (bad), "
                             f"got {df['class'].iloc[i]!r}; is this the UCI german.data file with commas?")
        df[GERMAN_TARGET] = (df.pop("class") == 2).astype(np.int64)
    return df, GERMAN_TARGET, [row[:] for row in GERMAN_COST_MATRIX]


PAYSIM_LEAKY = ["oldbalanceOrg", "newbalanceOrig", "oldbalanceDest", "newbalanceDest"]


def load_paysim(path: str | Path | None = None, leaky: bool = False) -> tuple["pd.DataFrame", str, str]:
    """PaySim mobile-money transactions (the header of Kaggle's ``ealaxi/paysim1``).

    The balance columns leak the label (the simulator cancels fraudulent transfers, so the balances do
    not add up exactly when it is fraud): ``leaky=False`` drops them, ``leaky=True`` keeps them to show
    the effect. Adds ``hour`` (``step`` is hours since the start; fraud ignores the daily rhythm of normal
    payments). ``nameOrig``/``nameDest`` stay in and are detected as ids by ``infer_columns``. Returns the
    frame, the target ``isFraud`` (0/1) and the time column ``step``.
    """
    path = _local(path or PAYSIM_SAMPLE_URL)
    df = read_table(path)
    need = ["step", "type", "amount", "isFraud"] + (PAYSIM_LEAKY if leaky else [])
    absent = [c for c in need if c not in df.columns]
    if absent:
        raise GuimoError(f"{path}: not a PaySim file, it lacks {', '.join(absent)} (columns: {', '.join(df.columns)})")
    if not leaky:
        df = df.drop(columns=[c for c in PAYSIM_LEAKY if c in df.columns])
    df["isFraud"] = df["isFraud"].astype(np.int64)
    df["hour"] = (df["step"].astype(np.int64) % 24).astype(np.int64)
    return df, "isFraud", "step"


def breast_cancer() -> tuple["pd.DataFrame", str]:
    """Wisconsin diagnostic breast cancer (scikit-learn's packaged copy, 569 rows, 30 numeric features).

    The target ``malignant`` is 1 for a malignant tumour (the positive class: scikit-learn codes 0 malignant)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    df = data.frame.drop(columns=["target"])
    df["malignant"] = (data.target == 0).astype(np.int64)
    return df, "malignant"


def diabetes() -> tuple["pd.DataFrame", str]:
    """Diabetes progression (scikit-learn's packaged copy, 442 rows, 10 features in their original units:
    age in years, sex 1/2, BMI, ...). The target ``progression`` is a disease-progression score one year
    after baseline (regression)."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True, scaled=False)
    df = data.frame.drop(columns=["target"])
    df["progression"] = data.target.astype(np.float64)
    return df, "progression"


# ---------------------------------------------------------------------------------------------- splits

def time_split(df: "pd.DataFrame", time_column: str, fractions: Sequence[float] = (0.7, 0.15, 0.15)
               ) -> tuple["pd.DataFrame", ...]:
    """Split rows by time: the first ``fractions[0]`` of the rows (in time order) train, the next
    validate, the last test, as a model is used in production (fit on the past, score the future).

    Rows with the same time value stay in one part (a cut moves to the next time boundary), so no part
    sees a moment another part also covers. Returns one frame per fraction, each in time order, with the
    original index. A part that comes out empty is an error (too few distinct times).
    """
    if time_column not in df.columns:
        raise GuimoError(f"no time column {time_column!r}; the columns are: {', '.join(map(str, df.columns))}")
    if abs(sum(fractions) - 1.0) > 1e-6 or any(f <= 0 for f in fractions):
        raise GuimoError(f"split fractions must be positive and sum to 1, got {list(fractions)}")
    ordered = df.sort_values(time_column, kind="stable")
    t = ordered[time_column].to_numpy()
    n = len(ordered)
    bounds = [0]
    for cum in np.cumsum(fractions)[:-1]:
        k = int(round(cum * n))
        k = int(np.searchsorted(t, t[min(k, n - 1)], side="left")) if 0 < k < n else k  # back to a time boundary
        bounds.append(max(k, bounds[-1]))
    bounds.append(n)
    parts = tuple(ordered.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
    if any(len(p) == 0 for p in parts):
        raise GuimoError(f"time split {list(fractions)} over {time_column!r} leaves a part empty: "
                         f"{len(np.unique(t))} distinct times in {n} rows")
    return parts


def _strata(y: np.ndarray, k: int) -> np.ndarray:
    """Labels to stratify on: the classes, or for a continuous target its quantile bins."""
    y = np.asarray(y)
    if y.dtype.kind == "f" and len(np.unique(y)) > MAX_CLASSES:
        edges = np.quantile(y, np.linspace(0, 1, k + 1)[1:-1])
        return np.searchsorted(edges, y, side="right")
    return y


def stratified_folds(y: Sequence, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` shuffled folds that keep the class shares (quantile bins for a regression target):
    ``[(train_idx, test_idx), ...]``, each test fold used once."""
    from sklearn.model_selection import StratifiedKFold

    strata = _strata(np.asarray(y), k)
    _, counts = np.unique(strata, return_counts=True)
    if counts.min() < k:
        raise GuimoError(f"{k}-fold cross-validation needs at least {k} rows of each class; the rarest has {counts.min()}")
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in folds.split(np.zeros(len(strata)), strata)]


def stratified_split(y: Sequence, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
                     ) -> tuple[np.ndarray, ...]:
    """Shuffled row indices for train/validation/test (any number of parts) keeping the class shares."""
    from sklearn.model_selection import train_test_split

    if abs(sum(fractions) - 1.0) > 1e-6 or any(f <= 0 for f in fractions):
        raise GuimoError(f"split fractions must be positive and sum to 1, got {list(fractions)}")
    strata = _strata(np.asarray(y), 5)
    rest = np.arange(len(strata))
    parts = []
    for f in fractions[:-1]:
        try:
            take, rest = train_test_split(rest, train_size=int(round(f * len(strata))), random_state=seed,
                                          stratify=strata[rest])
        except ValueError as e:
            raise GuimoError(f"cannot split {len(strata)} rows into {list(fractions)} keeping class shares ({e})") from None
        parts.append(np.sort(take))
    parts.append(np.sort(rest))
    return tuple(parts)
