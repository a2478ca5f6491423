"""Exact low-rank integer factorisation of a 256x256 integer table.

``table[a, w] = sum_r u[r, a] * v[r, w]`` with integer ``u``, ``v`` and the smallest possible
number of terms (the table's rank over the rationals). Steps:

1. Gaussian elimination with complete pivoting in float64 picks ``r`` pivot rows ``I`` and
   columns ``J`` (the float arithmetic only chooses pivots; nothing numerical is trusted).
2. An integer factorisation of rank ``r`` always exists: the rows of the table span a lattice
   of rank ``r``, and restricted to the columns ``J`` that lattice is isomorphic to the lattice
   of the rows of ``table[:, J]`` (256 x r). Its Hermite basis ``H`` (r x r, integer, by
   Euclid-style row reduction in Python integers) gives ``table[:, J] = u^T H`` with ``u``
   integer, and ``v = H table[I, J]^-1 table[I, :]``, integer because each row of ``v`` is an
   integer combination of the table's rows.
3. The Hermite basis is skewed and makes ``u`` huge (up to 10^18 on real tables), so the rows of
   ``v`` are LLL-reduced: exact unimodular row steps on ``v``, the inverse column steps on ``u``
   (float Gram-Schmidt only guides them). Both factors come out small (|u| <= 255 or so on the
   zoo's error tables), which is what keeps the emulated GEMM within float32's exact range.
4. ``u^T v == table`` is verified exactly; a failure (a pivot the float elimination judged
   nonzero or zero wrongly) tries one rank more, up to ``max_rank``; nothing unverified is ever
   returned.

Analysis of a LUT is cached by its SHA-256 (:func:`factorise_cached`), so building kernels for
every layer of a network costs one factorisation per distinct table.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

#: Factorisations are searched up to this rank (tables of higher rank use the gather path).
ANALYSIS_MAX_RANK = 16
_RELATIVE_PIVOT_TOL = 1e-9


@dataclass(frozen=True)
class Factorisation:
    """``table[a, w] == sum_r u[r, a] * v[r, w]`` exactly; ``u``, ``v`` int64 (rank, 256)."""

    u: np.ndarray
    v: np.ndarray

    def __post_init__(self) -> None:
        u = np.asarray(self.u)
        v = np.asarray(self.v)
        if u.ndim != 2 or v.ndim != 2 or u.shape[0] != v.shape[0]:
            raise ValueError(f"factors must be (rank, n) arrays of one rank, got {u.shape} and {v.shape}")
        for name, arr in (("u", u), ("v", v)):
            if arr.dtype.kind not in "iu":
                raise ValueError(f"factor {name} must hold integers, got dtype {arr.dtype}")
            arr = arr.astype(np.int64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def rank(self) -> int:
        return int(self.u.shape[0])

    def product(self) -> np.ndarray:
        """``u^T v`` as int64 (raises OverflowError where int64 could not hold it exactly)."""
        if self.rank == 0:
            return np.zeros((self.u.shape[1], self.v.shape[1]), dtype=np.int64)
        bound = int(np.abs(self.u).max()) * int(np.abs(self.v).max()) * self.rank
        if bound < (1 << 62):
            return self.u.T @ self.v
        exact = self.u.astype(object).T @ self.v.astype(object)
        if np.abs(exact).max() >= (1 << 62):
            raise OverflowError("factorisation product exceeds int64")
        return exact.astype(np.int64)

    def reproduces(self, table: np.ndarray) -> bool:
        """True when ``u^T v`` equals ``table`` exactly, entry for entry."""
        table = np.asarray(table)
        if table.shape != (self.u.shape[1], self.v.shape[1]):
            return False
        try:
            return bool(np.array_equal(self.product(), table.astype(np.int64)))
        except OverflowError:
            return False


def _pivots(table: np.ndarray, max_pivots: int) -> tuple[list[int], list[int], int]:
    """Complete-pivoting elimination in float64: pivot rows, columns, and the numerical rank."""
    work = table.astype(np.float64)
    scale = float(np.abs(work).max())
    rows: list[int] = []
    cols: list[int] = []
    rank = None
    for _ in range(max_pivots):
        flat = int(np.argmax(np.abs(work)))
        i, j = divmod(flat, work.shape[1])
        pivot = work[i, j]
        if pivot == 0.0:
            break
        if rank is None and abs(pivot) <= _RELATIVE_PIVOT_TOL * scale:
            rank = len(rows)  # numerically zero: keep pivoting in case the judgement is wrong
        rows.append(i)
        cols.append(j)
        work -= np.outer(work[:, j], work[i, :] / pivot)
        work[i, :] = 0.0
        work[:, j] = 0.0
    return rows, cols, len(rows) if rank is None else rank


def _hermite_basis(m: np.ndarray) -> np.ndarray | None:
    """Upper-triangular integer basis (r x r, object) of the lattice of the rows of ``m`` (n x r)."""
    rows = m.astype(object)
    r = rows.shape[1]
    basis = []
    for j in range(r):
        while True:
            col = rows[:, j]
            nz = np.flatnonzero(col != 0)
            if len(nz) == 0:
                return None  # rank deficient: the pivots were wrong
            p = nz[np.argmin(np.abs(col[nz]))]
            if len(nz) == 1:
                break
            q = col // col[p]
            q[p] = 0
            rows = rows - q[:, None] * rows[p][None, :]
        basis.append(rows[p].copy())
        rows = np.delete(rows, p, axis=0)
    if rows.size and np.any(rows != 0):
        return None
    return np.array(basis, dtype=object).reshape(r, r)


def _inverse(m: np.ndarray) -> list[list[Fraction]] | None:
    """Exact inverse of a small integer matrix (Gauss-Jordan over Fractions); None if singular."""
    n = m.shape[0]
    a = [[Fraction(int(m[i, j])) for j in range(n)] + [Fraction(int(i == j)) for j in range(n)] for i in range(n)]
    for c in range(n):
        p = next((i for i in range(c, n) if a[i][c] != 0), None)
        if p is None:
            return None
        a[c], a[p] = a[p], a[c]
        inv = 1 / a[c][c]
        a[c] = [x * inv for x in a[c]]
        for i in range(n):
            if i != c and a[i][c] != 0:
                f = a[i][c]
                a[i] = [x - f * y for x, y in zip(a[i], a[c])]
    return [row[n:] for row in a]


def _factorise_with_pivots(table: np.ndarray, rows: list[int], cols: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer ``u`` (n x r) and ``v`` (r x n), object dtype, with ``u @ v == table`` if the pivots are right."""
    r = len(rows)
    if r == 0:
        return None
    sub = table[:, cols]  # (n, r)
    h = _hermite_basis(sub)
    if h is None:
        return None
    inv = _inverse(table[np.ix_(rows, cols)])
    if inv is None:
        return None
    # u (n x r) with sub = u h: forward substitution over columns, exact division.
    n = sub.shape[0]
    u = np.zeros((n, r), dtype=object)
    s = sub.astype(object)
    for j in range(r):
        acc = s[:, j] - (u[:, :j] @ h[:j, j] if j else 0)
        if any(x % h[j, j] for x in acc):
            return None
        u[:, j] = acc // h[j, j]
    # v = h inv table[rows, :], with a common denominator.
    m = [[sum((Fraction(int(h[i, k])) * inv[k][j] for k in range(r)), Fraction(0)) for j in range(r)] for i in range(r)]
    den = 1
    for row in m:
        for x in row:
            den = den * x.denominator // math.gcd(den, x.denominator)
    m_num = np.array([[int(x * den) for x in row] for row in m], dtype=object)
    v_num = m_num @ table[rows, :].astype(object)
    if any(x % den for x in v_num.ravel()):
        return None
    v = v_num // den
    return u, v


def _lll(basis: np.ndarray, coeffs: np.ndarray, delta: float = 0.99, max_steps: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """LLL-reduce the rows of ``basis`` (r x n, object ints), keeping ``coeffs @ basis`` fixed.

    Every step is an exact unimodular row operation on ``basis`` with the inverse column
    operation on ``coeffs`` (n' x r), so the product never changes; Gram-Schmidt in float64 only
    guides the choice of steps (a poor guide gives a less reduced basis, never a wrong one).
    """
    b = basis.copy()
    c = coeffs.copy()
    r = b.shape[0]
    if r < 2:
        return b, c

    def gso(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = rows.astype(np.float64)
        star = np.zeros_like(f)
        mu = np.zeros((r, r))
        norms = np.zeros(r)
        for i in range(r):
            v = f[i].copy()
            for j in range(i):
                mu[i, j] = f[i] @ star[j] / norms[j] if norms[j] else 0.0
                v -= mu[i, j] * star[j]
            star[i] = v
            norms[i] = v @ v
        return mu, norms

    k, steps = 1, 0
    mu, norms = gso(b)
    while k < r and steps < max_steps:
        steps += 1
        for j in range(k - 1, -1, -1):
            q = round(mu[k, j])
            if q:
                b[k] = b[k] - q * b[j]
                c[:, j] = c[:, j] + q * c[:, k]
                mu[k, :j] -= q * mu[j, :j]
                mu[k, j] -= q
        if norms[k] >= (delta - mu[k, k - 1] ** 2) * norms[k - 1]:
            k += 1
        else:
            b[[k - 1, k]] = b[[k, k - 1]]
            c[:, [k - 1, k]] = c[:, [k, k - 1]]
            mu, norms = gso(b)
            k = max(k - 1, 1)
    return b, c


def _to_factorisation(u: np.ndarray, v: np.ndarray, table: np.ndarray) -> Factorisation | None:
    """LLL-reduce the factors (object ints), convert them to int64 and verify them exactly."""
    v, u = _lll(v, u)
    if max(abs(int(x)) for x in (*u.ravel(), *v.ravel())) >= (1 << 62):
        return None
    fact = Factorisation(u.T.astype(np.int64), v.astype(np.int64))
    return fact if fact.reproduces(table) else None


def exact_factorisation(table: np.ndarray, max_rank: int = ANALYSIS_MAX_RANK) -> Factorisation | None:
    """The exact integer factorisation of ``table`` of minimal rank, or None above ``max_rank``.

    Verified entry for entry before it is returned (see the module docstring).
    """
    table = np.asarray(table)
    if table.dtype.kind not in "iu":
        if not np.all(table == np.round(table)):
            raise ValueError("table must hold integers")
    table = table.astype(np.int64)
    if not np.any(table):
        n, m = table.shape
        return Factorisation(np.zeros((0, n), np.int64), np.zeros((0, m), np.int64))
    rows, cols, rank = _pivots(table, max_rank + 1)
    for r in range(max(rank, 1), min(len(rows), max_rank) + 1):
        raw = _factorise_with_pivots(table, rows[:r], cols[:r])
        if raw is not None:
            fact = _to_factorisation(*raw, table)
            if fact is not None:
                return fact
    return None


def table_key(table: np.ndarray) -> bytes:
    """SHA-256 of an integer table (as little-endian int64, row-major) with its shape."""
    table = np.ascontiguousarray(np.asarray(table).astype("<i8"))
    return hashlib.sha256(repr(table.shape).encode() + table.tobytes()).digest()


_TABLES: dict[bytes, np.ndarray] = {}


@functools.lru_cache(maxsize=1024)
def _factorise_by_key(key: bytes, max_rank: int) -> Factorisation | None:
    return exact_factorisation(_TABLES.pop(key), max_rank)


def factorise_cached(table: np.ndarray, max_rank: int = ANALYSIS_MAX_RANK) -> Factorisation | None:
    """:func:`exact_factorisation`, memoised by the table's SHA-256."""
    key = table_key(table)
    _TABLES[key] = np.asarray(table)
    try:
        return _factorise_by_key(key, max_rank)
    finally:
        _TABLES.pop(key, None)

