"""A PaySim-like stream of mobile-money payments with planted fraud: the `fraud` scenario's default data.

PaySim (Lopez-Rojas et al. 2016) simulates a mobile-money service: customers pay merchants
(PAYMENT), move money to each other (TRANSFER), take cash out at agents (CASH_OUT), pay cash in
(CASH_IN) and pay bank debits (DEBIT). Fraud there, as here, is an account takeover: the fraudster
empties the victim's account by TRANSFER to a mule account, which soon takes the money out as cash
(CASH_OUT); both rows are fraud. What this generator adds:

- **Fraud rings**: a ring's few mule accounts receive from many victims over the weeks; most mules are
  new accounts, some are recruited customers with a normal history; a quarter of the thefts are
  layered (mule to mule) before the cash-out.
- **Look-alikes**, so the task is learnable but not trivial: wage earners who receive a transfer and
  cash most of it out within hours; businesses that receive transfers from many customers; honest
  large first-time transfers; new honest accounts.
- **Time**: ``step`` is the hour since the start (as in PaySim); honest activity follows a daily rhythm,
  fraud does not.
- **No leaking balances**: PaySim's balance columns give fraud away (cancelled transactions leave them
  inconsistent); here the model sees what a bank's stream features would hold instead, each computed
  from earlier rows only: the origin's account age, its number of earlier transactions, the amount
  over its earlier mean, whether it paid this destination before, how many distinct senders the
  destination has had, and the hours since (and amount over) the origin's last incoming money.

``generate_payments(n_rows, fraud_rate=0.01, seed=0)`` returns a DataFrame in time order with the target
``is_fraud`` and the time column ``step``. The account columns ``nameOrig``/``nameDest`` are ids (as in
PaySim); ``guimo.data.tabular.infer_columns`` leaves them out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from guimo.errors import GuimoError

if TYPE_CHECKING:
    import pandas as pd

TARGET = "is_fraud"
TIME_COLUMN = "step"
TYPES = ("PAYMENT", "TRANSFER", "CASH_OUT", "CASH_IN", "DEBIT")
HONEST_TYPE_SHARES = (0.34, 0.08, 0.33, 0.22, 0.03)  # close to PaySim's mix (CASH_OUT 35 %, PAYMENT 34 %, CASH_IN 22 %)
# Honest activity per hour of the day (relative): quiet at night, peaks at noon and in the evening.
DAILY_RHYTHM = np.array([0.2, 0.1, 0.08, 0.08, 0.1, 0.25, 0.5, 0.8, 1.0, 1.1, 1.2, 1.3,
                         1.4, 1.3, 1.2, 1.1, 1.1, 1.2, 1.4, 1.5, 1.3, 1.0, 0.7, 0.4])


def generate_payments(n_rows: int, *, fraud_rate: float = 0.01, seed: int = 0, n_days: int = 30,
                      n_customers: int | None = None, n_merchants: int | None = None, n_rings: int | None = None,
                      mules_per_ring: int = 4) -> "pd.DataFrame":
    """``n_rows`` transactions over ``n_days`` days, of which a ``fraud_rate`` share is fraud (within one
    theft's rows: a theft writes 2 to 8 rows). Seeded: the same arguments give the same frame.

    ``n_customers`` (default ``n_rows // 15``), ``n_merchants`` (``n_rows // 200``) and ``n_rings`` (one per
    ~15 thefts) size the population; ``mules_per_ring`` accounts share a ring's stolen money.
    """
    import pandas as pd

    if n_rows < 100:
        raise GuimoError(f"generate_payments needs at least 100 rows, got {n_rows}")
    if not 0.0 < fraud_rate < 0.5:
        raise GuimoError(f"fraud_rate must be in (0, 0.5), got {fraud_rate}")
    rng = np.random.default_rng(seed)
    hours = n_days * 24
    n_cust = n_customers or max(100, n_rows // 15)
    n_merch = n_merchants or max(10, n_rows // 200)
    n_agents = max(5, n_cust // 100)
    n_employers = max(3, n_cust // 200)

    # --- the population: customers (wealth, activity, account opening), merchants, agents, employers
    wealth = rng.lognormal(8.0, 1.2, n_cust)  # typical balance
    activity = rng.lognormal(0.0, 1.0, n_cust)
    opened = -rng.exponential(24 * 400, n_cust)  # hours before the start; 12 % open during the window
    new = rng.random(n_cust) < 0.12
    opened[new] = rng.uniform(0, hours * 0.9, new.sum())
    wage_earner = rng.random(n_cust) < np.where(new, 0.4, 0.15)  # paid by transfer, cash out soon after
    merchant_price = rng.lognormal(3.5, 1.0, n_merch)
    merchant_pop = 1.0 / np.arange(1, n_merch + 1) ** 1.1  # Zipf: a few merchants take most payments
    business = rng.random(n_cust) < 0.02  # receive transfers from many customers
    businesses = np.flatnonzero(business) if business.any() else np.arange(1)

    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("t", "type", "amount", "orig", "dest", "fraud")}

    def add(t, typ, amount, orig, dest, fraud):
        n = len(t)
        rows["t"].append(np.asarray(t, float))
        rows["type"].append(np.broadcast_to(np.asarray(typ, dtype=object), (n,)))
        rows["amount"].append(np.asarray(amount, float))
        rows["orig"].append(np.broadcast_to(np.asarray(orig, dtype=object), (n,)))
        rows["dest"].append(np.broadcast_to(np.asarray(dest, dtype=object), (n,)))
        rows["fraud"].append(np.full(n, fraud, dtype=np.int64))

    def cust(i):
        return np.char.add("C", (1_000_000 + np.asarray(i)).astype(str)).astype(object)

    def merch(i):
        return np.char.add("M", (2_000_000 + np.asarray(i)).astype(str)).astype(object)

    def agent(i):
        return np.char.add("A", (3_000_000 + np.asarray(i)).astype(str)).astype(object)

    def honest_time(n):
        day = rng.integers(0, n_days, n)
        hour = rng.choice(24, n, p=DAILY_RHYTHM / DAILY_RHYTHM.sum())
        return day * 24 + hour + rng.random(n)

    # --- fraud: account takeovers cashed out through a ring's mules
    n_fraud_rows = int(round(fraud_rate * n_rows))
    n_thefts_guess = max(1, n_fraud_rows // 3)
    rings = n_rings or max(2, n_thefts_guess // 15)
    n_mules = rings * mules_per_ring
    recruited = rng.random(n_mules) < 0.5
    mule_ids = np.where(recruited, rng.integers(0, n_cust, n_mules), n_cust + np.arange(n_mules))  # new accounts beyond the customers
    mule_open = np.where(recruited, opened[np.minimum(mule_ids, n_cust - 1)], rng.uniform(-24 * 20, hours * 0.6, n_mules))
    mule_ring = np.repeat(np.arange(rings), mules_per_ring)
    written = 0
    while written < n_fraud_rows:
        victim = int(rng.choice(n_cust, p=activity / activity.sum()))  # busy accounts get phished as often as they are used
        ring = int(rng.integers(0, rings))
        members = np.flatnonzero(mule_ring == ring)
        mule = int(rng.choice(members))
        start = rng.uniform(max(float(mule_open[mule]), 0.0) + 1.0, hours - 1.0)  # any hour: fraud keeps no daily rhythm
        total = wealth[victim] * rng.uniform(0.1, 1.0)
        k = 1 if rng.random() < 0.6 else int(rng.integers(2, 4))
        t = start
        for part in rng.dirichlet(np.ones(k)) * total:
            add([t], "TRANSFER", [part], cust(victim), cust(mule_ids[mule]), 1)
            holder, amount = mule, part * rng.uniform(0.97, 1.0)
            t_hold = t + rng.exponential(3.0)
            if rng.random() < 0.25 and len(members) > 1:  # layering: pass it to another mule first
                nxt = int(rng.choice(members[members != holder]))
                add([t_hold], "TRANSFER", [amount], cust(mule_ids[holder]), cust(mule_ids[nxt]), 1)
                written += 1
                holder, t_hold = nxt, t_hold + rng.exponential(4.0)
            add([t_hold], "CASH_OUT", [amount * rng.uniform(0.95, 1.0)], cust(mule_ids[holder]),
                agent(rng.integers(0, n_agents)), 1)
            written += 2
            t += rng.exponential(0.5)

    # --- honest activity
    n_pairs = max(0, int((n_rows - written) * 0.06))  # wage transfers, each followed by a cash-out
    earners = np.flatnonzero(wage_earner)
    if len(earners) and n_pairs:
        who = rng.choice(earners, n_pairs)
        t = honest_time(n_pairs)
        wage = wealth[who] * rng.uniform(0.2, 0.8, n_pairs)
        add(t, "TRANSFER", wage, cust(n_cust + n_mules + rng.integers(0, n_employers, n_pairs)), cust(who), 0)
        add(np.minimum(t + rng.exponential(6.0, n_pairs), hours - 1e-6), "CASH_OUT",
            wage * np.where(rng.random(n_pairs) < 0.4, rng.uniform(0.95, 1.0, n_pairs), rng.uniform(0.4, 0.95, n_pairs)), cust(who), agent(rng.integers(0, n_agents, n_pairs)), 0)
    else:
        n_pairs = 0
    n_honest = n_rows - written - 2 * n_pairs
    if n_honest <= 0:
        raise GuimoError(f"fraud_rate {fraud_rate} leaves no honest rows in {n_rows}")
    who = rng.choice(n_cust, n_honest, p=activity / activity.sum())
    t = honest_time(n_honest)
    late = t < opened[who]  # a new account acts only after it opens
    t[late] = opened[who[late]] + rng.random(late.sum()) * (hours - opened[who[late]])
    kind = rng.choice(len(TYPES), n_honest, p=HONEST_TYPE_SHARES)
    amount = np.empty(n_honest)
    dest = np.empty(n_honest, dtype=object)
    m = kind == 0  # PAYMENT to a merchant
    shop = rng.choice(n_merch, m.sum(), p=merchant_pop / merchant_pop.sum())
    amount[m], dest[m] = merchant_price[shop] * rng.lognormal(0, 0.5, m.sum()), merch(shop)
    m = kind == 1  # TRANSFER: mostly to one of three regular payees, some to businesses, some to anyone (large, new)
    who_t = who[m]
    r = rng.random(m.sum())
    payee = (who_t * 7919 + rng.integers(0, 3, m.sum()) * 104729) % n_cust
    payee = np.where(r < 0.6, payee, np.where(r < 0.8, rng.choice(businesses, m.sum()), rng.integers(0, n_cust, m.sum())))
    amount[m] = wealth[who_t] * rng.lognormal(-2.0, 1.0, m.sum()) * np.where(r >= 0.95, 8.0, 1.0)
    dest[m] = cust(payee)
    for code, scale, sigma in ((2, -1.5, 0.9), (3, -1.5, 0.9), (4, -3.5, 0.7)):  # CASH_OUT, CASH_IN, DEBIT at agents
        m = kind == code
        amount[m], dest[m] = wealth[who[m]] * rng.lognormal(scale, sigma, m.sum()), agent(rng.integers(0, n_agents, m.sum()))
    for code in range(len(TYPES)):
        m = kind == code
        add(t[m], TYPES[code], amount[m], cust(who[m]), dest[m], 0)

    df = pd.DataFrame({k: np.concatenate(v) for k, v in rows.items()})
    df["t"] = np.minimum(df["t"], hours - 1e-6)  # a cash-out due after the window happens in its last hour
    df = df.sort_values("t", kind="stable").reset_index(drop=True)
    open_at = dict(zip(cust(np.arange(n_cust)), opened))
    open_at.update(zip(cust(mule_ids), mule_open))
    return _stream_features(df, open_at, rng)


def _stream_features(df: "pd.DataFrame", open_at: dict, rng: np.random.Generator) -> "pd.DataFrame":
    """The columns a bank computes from earlier rows of the stream only (never the label), in time order."""
    import pandas as pd

    pos = np.arange(len(df))
    df["step"] = np.floor(df["t"]).astype(np.int64)
    df["amount"] = df["amount"].round(2)
    first_seen = df.groupby("orig")["t"].transform("min")
    opened = df["orig"].map(open_at).astype(float)
    opened = opened.fillna(first_seen - rng.exponential(24 * 300, len(df)))  # employers: old accounts
    age = (df["t"] - np.minimum(opened, df["t"])) / 24.0
    prior = df.groupby("orig").cumcount()
    past_sum = df.groupby("orig")["amount"].cumsum() - df["amount"]
    past_mean = (past_sum / prior).where(prior > 0)
    pair_new = ~df.duplicated(["orig", "dest"])
    senders = pair_new.astype(np.int64).groupby(df["dest"]).cumsum() - pair_new.astype(np.int64)
    incoming = pd.DataFrame({"pos": pos, "account": df["dest"], "t_in": df["t"], "amount_in": df["amount"]})
    outgoing = pd.DataFrame({"pos": pos, "account": df["orig"]})
    last_in = pd.merge_asof(outgoing, incoming, on="pos", by="account", allow_exact_matches=False)  # strictly earlier rows
    out = pd.DataFrame({
        "step": df["step"],
        "type": df["type"].astype(str),
        "amount": df["amount"],
        "nameOrig": df["orig"].astype(str),
        "nameDest": df["dest"].astype(str),
        "orig_account_age_days": age.round(2),
        "orig_prior_txns": prior.astype(np.int64),
        "amount_to_orig_mean": (df["amount"] / past_mean).round(4),  # NaN for an origin's first transaction
        "new_dest": pair_new.astype(np.int64),
        "dest_prior_senders": senders.astype(np.int64),
        "hours_since_last_in": (df["t"].to_numpy() - last_in["t_in"].to_numpy()).round(2),  # NaN: never received
        "amount_to_last_in": (df["amount"].to_numpy() / last_in["amount_in"].to_numpy()).round(4),
        TARGET: df["fraud"].astype(np.int64),
    })
    return out
