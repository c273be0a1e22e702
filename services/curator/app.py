"""Curator service: stores candidates, emails the curator, serves the review page and a JSON API."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Form, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field

from deephype.common.bus import Bus, Subscription
from deephype.common.buses import build_bus
from deephype.common.compose import PostFormat
from deephype.common.contracts import Candidates, PostStatus, PublishedPost
from deephype.common.service import ServiceParts, create_app
from deephype.common.settings import Settings, get_settings
from deephype.common.signing import ApprovalKeys
from deephype.common.store import open_database
from deephype.curator.auth import SESSION_COOKIE, SESSION_MAX_AGE, Auth, Session, TokenError
from deephype.curator.email import EmailSender, build_sender
from deephype.curator.handlers import make_candidates_handler, make_post_status_handler, make_published_handler
from deephype.curator.labels import labelled_sets
from deephype.curator.review import (
    STATUSES,
    decided_by_words,
    length_words,
    plain_scores,
    platform_name,
    queue_page,
    song_context,
    when,
)
from deephype.curator.store import (
    MIGRATIONS,
    AlreadyDecided,
    CuratorStore,
    LinkUsed,
    NotFound,
    PostNotActionable,
    PostRefused,
    SessionRegistry,
)
from deephype.curator.throttle import AuthThrottle

log = logging.getLogger("deephype.curator")

templates = Jinja2Templates(
    env=Environment(loader=PackageLoader("deephype.curator", "templates"), autoescape=select_autoescape(["html"]))
)
templates.env.globals.update(
    plain_scores=plain_scores, platform_name=platform_name, decided_by_words=decided_by_words, when=when
)


class ApproveRequest(BaseModel):
    candidate_id: str = Field(min_length=1, max_length=64)
    text: str | None = Field(default=None, min_length=1, max_length=2000)
    # The whole composed post as edited (see CuratorStore.approve), and whether to skip the poster's queue.
    post: str | None = Field(default=None, min_length=1, max_length=2000)
    now: bool = False


PostAction = Literal["requeue", "drop"]
PostPlatform = Literal["x", "mastodon", "bluesky", "dry_run"]


class BrokerUnavailable(Exception):
    """The bus did not take a message the curator sent on a person's request."""


class PostDecisionRequest(BaseModel):
    # The attempt count the caller saw (GET /v1/songs/{id}: outcome posts); default: the latest report's.
    attempts: int | None = Field(default=None, ge=0)


class ApprovalSender:
    """Publishes approvals; ones that could not be published (broker down) are retried from the store."""

    def __init__(self, store: CuratorStore, bus: Bus, interval: float = 5.0) -> None:
        self.store, self.bus, self.interval = store, bus, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="curator-approvals", daemon=True)

    def send_pending(self) -> int:
        sent = 0
        # Give the normal path (publish right after the decision, or the handler's own output) time first.
        for approval in self.store.unsent_approvals(older_than_seconds=self.interval):
            # Signed again with the current key: one stored before a key rotation still verifies.
            self.bus.publish(self.store.keys.sign(approval))
            self.store.mark_approval_sent(approval.message_id)
            sent += 1
        return sent

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.send_pending()
            except Exception:
                log.exception("could not send pending approvals; trying again")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


def build(settings: Settings, bus: Bus, sender: EmailSender | None = None) -> tuple[ServiceParts, CuratorStore, Auth]:
    db = open_database(settings, "curator", MIGRATIONS)
    post_format = PostFormat.from_settings(settings)
    store = CuratorStore(db, ApprovalKeys.from_settings(settings), post_format)
    auth = Auth(settings, SessionRegistry(db))
    throttle = AuthThrottle.from_settings(settings)
    sender = sender or build_sender(settings)
    approvals = ApprovalSender(store, bus)
    post_platform = post_format.platforms[0]

    def approve(
        set_id: str,
        candidate_id: str,
        text: str | None,
        by: str,
        token_id: str | None = None,
        post: str | None = None,
        now: bool = False,
    ) -> None:
        approval = store.approve(
            set_id,
            candidate_id,
            text,
            by=by,
            post_platform=post_format.platforms,
            token_id=token_id,
            post_text=post,
            post_now=now,
        )
        try:
            bus.publish(approval)
            store.mark_approval_sent(approval.message_id)
        except Exception:
            log.exception("approval %s stored; the broker did not take it yet, it will be resent", approval.message_id)

    def send_post_decision(set_id: str, platform: str, action: str, by: str, attempts: int | None = None) -> str:
        """Sign and send a requeue or drop to the poster; what was done, in words. Raises NotFound or
        PostNotActionable, and BrokerUnavailable when the broker did not take it (then nothing changed)."""
        decision = store.post_decision(set_id, platform, action, by=by, attempts=attempts)
        try:
            bus.publish(decision)
        except Exception as exc:
            log.exception("post decision %s for %s not sent", action, set_id)
            raise BrokerUnavailable("the message bus did not take it, so nothing changed; try again") from exc
        name = platform_name(platform)
        if action == "requeue":
            return f"Sent to the poster: the post for {name} goes out again in a moment."
        return f"Sent to the poster: the post for {name} is dropped and will not go out."

    # --- JSON API (its own bearer token) ---

    def check_bearer(request: Request, authorization: str | None, *, metrics: bool = False) -> None:
        """The API token opens the JSON API, its docs and schema, and /metrics; the metrics token only
        /metrics. Wrong tokens count towards the throttle; past it even a right one waits."""
        client = client_address(request)
        if wait := throttle.retry_after("api", client):
            raise HTTPException(
                429, f"too many wrong tokens; try again in {wait} s", headers={"Retry-After": str(wait)}
            )
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not (
            auth.check_api_token(value) or (metrics and auth.check_metrics_token(value))
        ):
            throttle.failed("api", client)
            raise HTTPException(
                401,
                "send Authorization: Bearer <DEEPHYPE_CURATOR_API_TOKEN> (the API is closed while it is not set)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def require_bearer(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
        check_bearer(request, authorization)

    def guard_ops(request: Request) -> None:
        """/docs, /openapi.json and /metrics: what the API looks like and how busy it is are not public."""
        check_bearer(request, request.headers.get("authorization"), metrics=request.url.path == "/metrics")

    api = APIRouter(prefix="/v1", tags=["curator"], dependencies=[Depends(require_bearer)])

    @api.get("/songs")
    def list_songs(
        status: Literal["pending", "approved", "rejected", "published"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        return [song.as_json() for song in store.songs(status, limit)]

    @api.get("/songs/{set_id}")
    def get_song(set_id: str) -> dict[str, Any]:
        try:
            return store.song(set_id).as_json()
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc

    @api.post("/songs/{set_id}/approve")
    def approve_song(set_id: str, body: ApproveRequest) -> dict[str, Any]:
        try:
            approve(set_id, body.candidate_id, body.text, "curator-api", post=body.post, now=body.now)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except AlreadyDecided as exc:
            raise HTTPException(409, str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        return store.song(set_id).as_json()

    @api.post("/songs/{set_id}/reject")
    def reject_song(set_id: str) -> dict[str, Any]:
        try:
            store.reject(set_id, by="curator-api")
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except AlreadyDecided as exc:
            raise HTTPException(409, str(exc)) from exc
        return store.song(set_id).as_json()

    @api.post("/songs/{set_id}/posts/{platform}/{action}", status_code=202)
    def decide_post(
        set_id: str, platform: PostPlatform, action: PostAction, body: PostDecisionRequest | None = None
    ) -> dict[str, Any]:
        """Requeue (held or failed: post it now) or drop (queued, held or failed) one approved post. Accepted
        means the poster was told; the post's state changes when the poster reports back."""
        try:
            done = send_post_decision(set_id, platform, action, "curator-api", body.attempts if body else None)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except PostNotActionable as exc:
            raise HTTPException(409, str(exc)) from exc
        except BrokerUnavailable as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from exc
        return {"accepted": done, "song": store.song(set_id).as_json()}

    @api.get("/decisions")
    def decisions(
        view: Literal["decisions", "sets"] = "decisions",
        since_id: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> list[dict[str, Any]]:
        """Approved and rejected texts (view=decisions), or per candidate set what the curator did with each
        candidate: approved, passed over, rejected, the edit before/after, the post (view=sets; learn.py)."""
        if view == "sets":
            return labelled_sets(store.db, since_id, limit)
        return store.decisions()

    # --- the review page (cookie session + CSRF) ---

    pages = APIRouter(tags=["review page"])

    def current_session(request: Request) -> Session | None:
        return auth.load_session(request.cookies.get(SESSION_COOKIE))

    def render(request: Request, name: str, session: Session, status_code: int = 200, **context: Any) -> Response:
        nonce = secrets.token_urlsafe(16)  # the page's own style and script carry it; nothing else may run
        response = templates.TemplateResponse(
            request, name, {"session": session, "csp_nonce": nonce, **context}, status_code=status_code
        )
        response.headers.update(page_security_headers(nonce))
        _set_session(response, session)
        return response

    def _set_session(response: Response, session: Session) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            auth.dump_session(session),
            max_age=SESSION_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=settings.public_url.startswith("https://"),
        )

    def check_csrf(session: Session | None, csrf: str) -> Session:
        if session is None or not secrets.compare_digest(session.csrf.encode(), csrf.encode()):
            raise HTTPException(403, "the form expired or did not come from this site (CSRF check failed)")
        return session

    def message(request: Request, session: Session, heading: str, text: str, status_code: int) -> Response:
        return render(request, "message.html", session, status_code=status_code, heading=heading, text=text)

    @pages.get("/", response_class=HTMLResponse)
    def index(
        request: Request,
        status: str = "pending",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        flash: str | None = None,
    ) -> Response:
        """The queue: a page of songs in one status, newest first."""
        session = current_session(request)
        if session is None or session.user != "curator":
            if session is not None and session.song:
                return RedirectResponse(f"/songs/{session.song}", status_code=303)
            return RedirectResponse("/login", status_code=303)
        if status not in (*STATUSES, "all"):
            return message(request, session, "No such list", f"status is one of {', '.join(STATUSES)} or all", 400)
        return render(request, "index.html", session, queue=queue_page(store, status, page), flash=flash)

    @pages.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        session = current_session(request) or auth.new_session()
        return render(request, "login.html", session, login_enabled=auth.login_enabled)

    @pages.post("/login")
    def login(request: Request, password: Annotated[str, Form()], csrf: Annotated[str, Form()]) -> Response:
        client = client_address(request)
        if wait := throttle.retry_after("login", client):
            # Refused before the password is even compared: guessing faster gains nothing.
            response = render(
                request,
                "login.html",
                auth.new_session(),
                status_code=429,
                login_enabled=auth.login_enabled,
                flash=f"Too many failed logins. Try again in {wait} seconds.",
                flash_kind="error",
            )
            response.headers["Retry-After"] = str(wait)
            return response
        check_csrf(current_session(request), csrf)
        if not auth.check_password(password):
            throttle.failed("login", client)
            session = auth.new_session()
            return render(
                request,
                "login.html",
                session,
                status_code=401,
                login_enabled=auth.login_enabled,
                flash="Wrong password.",
                flash_kind="error",
            )
        response = RedirectResponse("/", status_code=303)
        _set_session(response, auth.new_session(user="curator"))  # a fresh session (and CSRF token) on login
        return response

    @pages.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form()]) -> Response:
        auth.end_session(check_csrf(current_session(request), csrf))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @pages.get("/review/{token}", response_class=HTMLResponse)
    def review_link(request: Request, token: str) -> Response:
        """The link in the email. Opening it (as mail scanners do) only shows the page; it decides nothing."""
        session = auth.new_session()
        try:
            set_id, token_id = auth.read_review_token(token)
        except TokenError as exc:
            return message(request, session, "Link not valid", str(exc), 403)
        if store.token_used(token_id):
            return message(request, session, "Link already used", "This review link was used already.", 403)
        response = RedirectResponse(f"/songs/{set_id}", status_code=303)
        _set_session(response, auth.new_session(song=set_id, token_id=token_id))
        return response

    def page_session(request: Request, set_id: str) -> Session:
        session = current_session(request)
        if session is None or not session.may_see(set_id):
            raise HTTPException(303, headers={"Location": "/login"})
        return session

    @pages.get("/songs/{set_id}", response_class=HTMLResponse)
    def song_page(request: Request, set_id: str, flash: str | None = None) -> Response:
        return song_response(request, page_session(request, set_id), set_id, flash=flash)

    def song_response(
        request: Request, session: Session, set_id: str, status_code: int = 200, **context: Any
    ) -> Response:
        """One song: the post that named it, where it goes, its candidates or what became of it."""
        try:
            song = store.song(set_id)
        except NotFound as exc:
            return message(request, session, "Not found", str(exc), 404)
        page = {"kept": {}, **song_context(store, song, list(post_format.platforms)), **context}
        return render(request, "song.html", session, status_code=status_code, **page)

    def decide(
        request: Request,
        set_id: str,
        csrf: str,
        action: Any,
        check: Callable[[], str | None] = lambda: None,
        kept: dict[str, str] | None = None,
    ) -> Response:
        session = check_csrf(page_session(request, set_id), csrf)

        def refused(problem: str) -> Response:
            # Back to the form with the edit kept and what to change: a refused edit is never a dead end.
            flash = f"Not approved: {problem}. Change it and approve again."
            return song_response(request, session, set_id, 422, kept=kept or {}, flash=flash, flash_kind="error")

        # Bad input is refused before a review link is spent, so the curator can fix the text and retry.
        if problem := check():
            return refused(problem)
        # A review link is single-use: the first decision that succeeds spends it (in the same transaction),
        # so a failed attempt (a wrong candidate, a text refused) leaves it usable for the retry.
        if session.user == "curator":
            by, token_id = "curator", None
        elif session.token_id is None or store.token_used(session.token_id):
            return message(request, session, "Link already used", "This review link was used already.", 403)
        else:
            by, token_id = "review-link", session.token_id
        try:
            done = action(by, token_id)
        except LinkUsed as exc:
            return message(request, session, "Link already used", str(exc), 403)
        except NotFound as exc:
            return message(request, session, "Not found", str(exc), 404)
        except AlreadyDecided as exc:
            return message(request, session, "Already decided", str(exc), 409)
        except PostRefused as exc:  # the platform it is too long for, by how much
            return refused(length_words(exc.post, exc.platform) or str(exc))
        except ValueError as exc:
            return refused(str(exc))
        return RedirectResponse(f"/songs/{set_id}?flash={done}", status_code=303)

    @pages.post("/songs/{set_id}/approve")
    def approve_form(
        request: Request,
        set_id: str,
        csrf: Annotated[str, Form()],
        candidate_id: Annotated[str, Form()],
        text: Annotated[str, Form()],
        own: Annotated[bool, Form()] = False,  # from "write my own": its text is kept apart on a refusal
        post: Annotated[str | None, Form()] = None,
        now: Annotated[bool, Form()] = False,
    ) -> Response:
        return decide(
            request,
            set_id,
            csrf,
            lambda by, token_id: approve(set_id, candidate_id, text, by, token_id, post, now) or "Approved.",
            check=lambda: length_words(text, post_platform),
            kept={"own": text} if own else {candidate_id: text if post is None else post},
        )

    @pages.post("/songs/{set_id}/reject")
    def reject_form(request: Request, set_id: str, csrf: Annotated[str, Form()]) -> Response:
        return decide(
            request, set_id, csrf, lambda by, token_id: store.reject(set_id, by=by, token_id=token_id) or "Rejected."
        )

    @pages.post("/songs/{set_id}/posts/{platform}/{action}")
    def post_decision_form(
        request: Request,
        set_id: str,
        platform: PostPlatform,
        action: PostAction,
        csrf: Annotated[str, Form()],
        attempts: Annotated[int, Form(ge=0)],
    ) -> Response:
        session = check_csrf(page_session(request, set_id), csrf)
        if session.user != "curator":  # a review link decides on candidates, not on what the poster does
            text = "Only the curator, logged in, can requeue or drop a post."
            return message(request, session, "Log in to do this", text, 403)
        try:
            done = send_post_decision(set_id, platform, action, "curator", attempts)
        except NotFound as exc:
            return message(request, session, "Not found", str(exc), 404)
        except (PostNotActionable, BrokerUnavailable) as exc:
            status = 503 if isinstance(exc, BrokerUnavailable) else 409
            return song_response(request, session, set_id, status, flash=f"Not done: {exc}.", flash_kind="error")
        return RedirectResponse(f"/songs/{set_id}?flash={done}", status_code=303)

    parts = ServiceParts(
        name="curator",
        subscriptions=[
            Subscription(
                "curator",
                {
                    Candidates: make_candidates_handler(
                        store, sender, auth, settings, post_platform=post_format.platforms
                    ),
                    PublishedPost: make_published_handler(store),
                    PostStatus: make_post_status_handler(store),
                },
            )
        ],
        ready_checks={"database": db.ping},
        routers=[api, pages],
        ops_guard=guard_ops,
        on_start=[approvals.start],
        on_stop=[approvals.stop],
    )
    return parts, store, auth


def create(settings: Settings | None = None) -> FastAPI:
    """uvicorn --factory deephype.curator.app:create"""
    settings = settings or get_settings()
    bus = build_bus(settings, connection_name="curator")
    parts, _, _ = build(settings, bus)
    return create_app(parts, bus)


def client_address(request: Request) -> str:
    """Who is trying, for throttling: the peer address (headers such as X-Forwarded-For can be forged)."""
    return request.client.host if request.client else "unknown"


def page_security_headers(nonce: str) -> dict[str, str]:
    """For every review page: only the page's own style and script (the count and the shortcuts; a
    candidate's text can never run), forms post only here, and no other site may frame it (clickjacking)."""
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; img-src 'self'; "
            "form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
