"""The login a miner's worker goes upstream as, when the farm mines under one account.

With ``upstream_account`` set, the pool sees the farm's account, never the miner's; the
miner's own identity stays in the upstream worker name, so the pool's per-worker figures
(and any dispute) keep miners apart:

    alice.rig1  ->  <account>.alice<sep>rig1
    bob.rig1    ->  <account>.bob<sep>rig1
    alice       ->  <account>.alice

A pure, one-to-one mapping: a miner's account part holds neither ``.`` (it ends at the
first one) nor the separator (such a login is refused at ``mining.authorize``), so no two
logins ever map to one upstream worker. The authorize and every submit use this same
function, so a submit can never go up under a login the pool did not authorize.
"""

from __future__ import annotations

from stratum_proxy.admission import Refusal, Refused, worker_name_refusal
from stratum_proxy.shares import split_login


def upstream_login(login: str, account: str | None, separator: str) -> str:
    """The upstream worker for ``login`` under the farm's ``account`` (itself without one)."""
    if account is None:
        return login
    user, dot, rig = login.partition(".")
    return f"{account}.{user}{separator}{rig}" if dot else f"{account}.{user}"


def authorize_refusal(login: object, account: str | None, separator: str) -> Refused | None:
    """Why ``login`` may not be authorized: a name the database can't store, or (under a
    farm account) one whose account part holds the separator and could pass for another
    miner's."""
    refused = worker_name_refusal(login)
    if refused is not None or account is None:
        return refused
    user, _ = split_login(str(login))
    if separator in user:
        return Refused(Refusal.INVALID_WORKER_NAME,
                       f"the account part may not hold {separator!r}")  # fmt: skip
    return None
