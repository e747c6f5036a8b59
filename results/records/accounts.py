"""Organisations, users and their roles; logging in by password or token.

Roles are the office's and the bench's: a small lab may give one person several roles, but the
workflow still refuses one person doing two duties that must be segregated on the same order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from daq.errors import ConfigError
from results.records import audit
from results.records.errors import NotFound, Refused
from results.records.models import ApiTokenRow, OrganisationRow, UserRow
from results.records.passwords import check_password, hash_password, new_token, token_digest


class Role(StrEnum):
    CUSTOMER = "customer"
    CUSTOMER_SERVICE = "customer_service"
    TEAM_LEAD = "team_lead"
    TREASURER = "treasurer"
    SUPERVISOR = "supervisor"
    TECHNICAL_MANAGER = "technical_manager"
    ANALYST = "analyst"
    HEAD = "head"
    QA = "qa"
    ADMIN = "admin"


STAFF_ROLES = frozenset(Role) - {Role.CUSTOMER}
TOKEN_LIFETIME = timedelta(hours=12)


def roles_of(user: UserRow) -> set[Role]:
    return {Role(r) for r in user.roles.split(",") if r}


def parse_roles(text: str | list[str], source: str = "--roles") -> list[Role]:
    names = text.split(",") if isinstance(text, str) else list(text)
    roles = []
    for name in (n.strip() for n in names):
        try:
            roles.append(Role(name))
        except ValueError:
            raise ConfigError(source, "roles", f"unknown role {name!r}",
                              f"use one or more of {', '.join(r.value for r in Role)}") from None
    if not roles:
        raise ConfigError(source, "roles", "no role given", "give at least one role")
    return roles


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def add_organisation(s: AsyncSession, *, name: str, kind: str, address: str = "", actor: str) -> OrganisationRow:
    if kind not in ("internal", "external"):
        raise ConfigError("organisation", "kind", f"expected internal or external, got {kind!r}",
                          "internal customers are free of charge; external ones pay the tariff")
    if not name.strip():
        raise ConfigError("organisation", "name", "empty", "give the customer's name")
    if await s.scalar(select(OrganisationRow.id).where(OrganisationRow.name == name)) is not None:
        raise ConfigError("organisation", "name", f"{name!r} already exists", "use the existing organisation")
    row = OrganisationRow(name=name, kind=kind, address=address, created_at=utcnow())
    s.add(row)
    await s.flush()
    await audit.append(s, actor=actor, action="add organisation", entity="organisations", entity_id=row.id)
    return row


async def add_user(s: AsyncSession, *, username: str, full_name: str, roles: list[Role], password: str,
                   organisation: str | None = None, active: bool = True, actor: str) -> UserRow:
    """Staff accounts are made active by an administrator; a customer's self-registration is not."""
    if not username.strip() or any(c.isspace() for c in username):
        raise ConfigError("user", "username", f"{username!r} is empty or has spaces", "choose a single word")
    if len(password) < 8:
        raise ConfigError("user", "password", "shorter than 8 characters", "choose a longer password")
    if await s.scalar(select(UserRow.id).where(UserRow.username == username)) is not None:
        raise ConfigError("user", "username", f"{username!r} is taken", "choose another username")
    org_id = None
    if Role.CUSTOMER in roles:
        if organisation is None:
            raise ConfigError("user", "organisation", "a customer belongs to an organisation",
                              "give --organisation NAME")
        org = await s.scalar(select(OrganisationRow).where(OrganisationRow.name == organisation))
        if org is None:
            raise ConfigError("user", "organisation", f"no organisation {organisation!r}",
                              "add it first (daq orders organisation add)")
        org_id = org.id
        if set(roles) & STAFF_ROLES:
            raise ConfigError("user", "roles", "a customer account cannot also hold a staff role",
                              "make a separate staff account")
    row = UserRow(username=username, full_name=full_name, roles=",".join(r.value for r in roles),
                  organisation_id=org_id, password_hash=hash_password(password), active=active, created_at=utcnow())
    s.add(row)
    await s.flush()
    await audit.append(s, actor=actor, action="add user", entity="users", entity_id=row.id,
                       detail={"roles": row.roles, "active": active})
    return row


async def activate(s: AsyncSession, admin: UserRow, username: str) -> UserRow:
    if Role.ADMIN not in roles_of(admin):
        raise Refused("R-ROLE", f"{admin.username} is not an administrator", "an administrator activates accounts")
    user = await user_named(s, username)
    user.active = True
    await audit.append(s, actor=admin.username, action="activate user", entity="users", entity_id=user.id)
    return user


async def user_named(s: AsyncSession, username: str) -> UserRow:
    user = await s.scalar(select(UserRow).where(UserRow.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


async def authenticate(s: AsyncSession, username: str, password: str) -> UserRow:
    """One message for a wrong name or a wrong password: which one it was is not told."""
    user = await s.scalar(select(UserRow).where(UserRow.username == username))
    if user is None or not check_password(password, user.password_hash):
        raise Refused("R-LOGIN", "unknown user or wrong password", "check the username and password")
    if not user.active:
        raise Refused("R-ACTIVE", f"account {username!r} is not activated yet",
                      "an administrator activates new accounts (seed 001 step 3)")
    return user


async def issue_token(s: AsyncSession, user: UserRow) -> str:
    token = new_token()
    now = datetime.now(UTC)
    s.add(ApiTokenRow(token_sha256=token_digest(token), user_id=user.id, created_at=now.isoformat(),
                      expires_at=(now + TOKEN_LIFETIME).isoformat()))
    return token


async def user_for_token(s: AsyncSession, token: str) -> UserRow:
    row = await s.scalar(select(ApiTokenRow).where(ApiTokenRow.token_sha256 == token_digest(token)))
    if row is None or datetime.fromisoformat(row.expires_at) < datetime.now(UTC):
        raise Refused("R-LOGIN", "the token is unknown or expired", "log in again")
    user = await s.get(UserRow, row.user_id)
    if user is None or not user.active:
        raise Refused("R-ACTIVE", "the account is not active", "ask an administrator")
    return user


async def set_signing_passphrase(s: AsyncSession, user: UserRow, passphrase: str) -> str:
    """A new signing key for the head of laboratory, locked with the passphrase; returns its public key."""
    from results.records.signing import new_signing_key

    if Role.HEAD not in roles_of(user):
        raise Refused("R-ROLE", f"{user.username} is not head of laboratory", "only the head signs certificates")
    user.signing_key, user.public_key = new_signing_key(passphrase)
    await audit.append(s, actor=user.username, action="new signing key", entity="users", entity_id=user.id,
                       detail={"public_key": user.public_key})
    return user.public_key
