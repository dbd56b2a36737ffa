"""The admin UI's signed cookies: the operator's session (with its CSRF token) and the short-lived login state."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from herald.auth import Principal, UserRole

SESSION_COOKIE = "herald_session"
LOGIN_COOKIE = "herald_login"
COOKIE_PATH = "/admin/"
LOGIN_MAX_AGE_S = 600  # from leaving for the provider to coming back


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str  # every form posts it back; a cross-site page cannot read it

    @classmethod
    def start(cls, principal: Principal) -> Session:
        return cls(principal, secrets.token_urlsafe(32))


@dataclass(frozen=True)
class LoginState:
    """What the callback checks the provider's answer against (state, nonce) and proves the code with (PKCE)."""

    state: str
    nonce: str
    verifier: str
    next: str

    @classmethod
    def start(cls, next_path: str) -> LoginState:
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), next_path)


class Sessions:
    def __init__(self, secret: str, max_age_s: int, public_url: str = "") -> None:
        self._sessions = URLSafeTimedSerializer(secret, salt="herald-admin-session")
        self._logins = URLSafeTimedSerializer(secret, salt="herald-admin-login")
        self._max_age_s = max_age_s
        # Behind a TLS proxy Herald itself sees plain HTTP: the public address tells whether browsers use HTTPS.
        self._secure = public_url.startswith("https://") if public_url else None

    def read(self, request: web.Request) -> Session | None:
        data = self._load(self._sessions, request.cookies.get(SESSION_COOKIE), self._max_age_s)
        if data is None:
            return None
        role = UserRole(data["role"]) if data["role"] else None
        return Session(Principal(data["sub"], data["name"], role), data["csrf"])

    def write(self, response: web.StreamResponse, request: web.Request, session: Session) -> None:
        principal = session.principal
        value = self._sessions.dumps(
            {
                "sub": principal.subject,
                "name": principal.name,
                "role": principal.role and principal.role.value,
                "csrf": session.csrf,
            }
        )
        self._set_cookie(response, request, SESSION_COOKIE, value, self._max_age_s)

    def read_login(self, request: web.Request) -> LoginState | None:
        data = self._load(self._logins, request.cookies.get(LOGIN_COOKIE), LOGIN_MAX_AGE_S)
        return None if data is None else LoginState(**data)

    def write_login(self, response: web.StreamResponse, request: web.Request, login: LoginState) -> None:
        value = self._logins.dumps(vars(login))
        self._set_cookie(response, request, LOGIN_COOKIE, value, LOGIN_MAX_AGE_S)

    def _set_cookie(
        self, response: web.StreamResponse, request: web.Request, name: str, value: str, max_age_s: int
    ) -> None:
        # Lax, not Strict: the provider's redirect back to the callback is a cross-site top-level navigation.
        response.set_cookie(
            name,
            value,
            max_age=max_age_s,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Lax",
            secure=request.secure if self._secure is None else self._secure,
        )

    @staticmethod
    def clear(response: web.StreamResponse, name: str) -> None:
        response.del_cookie(name, path=COOKIE_PATH)

    @staticmethod
    def _load(serializer: URLSafeTimedSerializer, value: str | None, max_age_s: int) -> Any:
        if not value:
            return None
        try:
            return serializer.loads(value, max_age=max_age_s)
        except BadSignature:  # also an expired one (SignatureExpired is a BadSignature)
            return None


# The admin sub-application's own state: the pages reach it through request.app.
sessions_key = web.AppKey("admin_sessions", Sessions)
# The signed-in operator's session, which the guard puts on every request it lets through.
session_key = web.RequestKey("admin_session", Session)
