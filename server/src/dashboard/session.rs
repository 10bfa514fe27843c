//! Dashboard sessions: the login form, the session cookie, CSRF tokens, logout, and keeping a
//! form across an expired session.

use askama::Template;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use doorstep_core::model::Role;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::{PageError, PageResult, assets, render};
use crate::auth::{self, AdminSession};
use crate::error::AppError;
use crate::state::AppState;

/// The session cookie: the same `ds_…` token the JSON API takes as a bearer.
pub const SESSION_COOKIE: &str = "doorstep_session";
/// The login form's double-submit token (there is no session yet to derive one from).
const LOGIN_COOKIE: &str = "doorstep_login";
/// The largest form a dashboard page posts.
const FORM_LIMIT: usize = 64 * 1024;

/// A logged-in dashboard user.
#[derive(Debug, Clone)]
pub struct DashUser {
    pub session: AdminSession,
    /// The token every form of this session carries.
    pub csrf: String,
}

impl DashUser {
    /// A 403 page unless the user has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> PageResult<()> {
        if roles.iter().any(|r| self.session.account.is(*r)) {
            Ok(())
        } else {
            Err(PageError::forbidden())
        }
    }

    pub fn is(&self, role: Role) -> bool {
        self.session.account.is(role)
    }
}

/// The CSRF token of a session: a hash of its secret, so it cannot be guessed without the
/// HttpOnly cookie and needs no storage.
fn csrf_of(token: &str) -> String {
    hex::encode(Sha256::digest(format!("doorstep-csrf\0{token}").as_bytes()))
}

/// Equal without an early exit, so timing tells nothing about the expected token.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session of a request's cookie, if it is live.
async fn session_of(parts: &Parts, state: &AppState) -> Result<Option<DashUser>, PageError> {
    let jar = CookieJar::from_headers(&parts.headers);
    let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(None);
    };
    if token.is_empty() || token.len() > 256 {
        return Ok(None);
    }
    let hash = auth::token_hash(&token);
    let st = state.clone();
    let account =
        tokio::task::spawn_blocking(move || st.storage().session_account(&hash, st.now()))
            .await?
            .map_err(AppError::from)?;
    Ok(account.map(|account| DashUser {
        session: AdminSession { account },
        csrf: csrf_of(&token),
    }))
}

/// A local path to come back to after logging in (never another site).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

impl FromRequestParts<AppState> for DashUser {
    type Rejection = Response;

    /// Without a live session a page sends the browser to the login form, coming back here.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match session_of(parts, state).await {
            Ok(Some(user)) => Ok(user),
            Ok(None) => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let target = format!(
                    "/login?{}",
                    serde_urlencoded::to_string([("next", next)])
                        .expect("invariant: one string pair always encodes")
                );
                Err(Redirect::to(&target).into_response())
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A form posted by a logged-in user with a valid CSRF token, decoded into `T`.
///
/// Without a live session the admin gets the login page, holding the fields they filled in;
/// without the right token (a cross-site post, a stale page) the post is refused with `csrf`.
pub struct Posted<T> {
    pub user: DashUser,
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path().to_string();
        let user = session_of(&parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = axum::body::to_bytes(Body::new(body), FORM_LIMIT)
            .await
            .map_err(|_| {
                PageError::from(AppError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "表单内容太大",
                ))
                .into_response()
            })?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| PageError::from(AppError::invalid("表单无法解析")).into_response())?;
        let Some(user) = user else {
            let keep: Vec<(String, String)> =
                pairs.into_iter().filter(|(k, _)| k != "_csrf").collect();
            return Err(login_form(
                &parts.headers,
                StatusCode::UNAUTHORIZED,
                Some("登录已过期，请重新登录。您刚才填写的内容已保留，登录后可继续提交。"),
                &path,
                serde_urlencoded::to_string(&keep).expect("invariant: string pairs always encode"),
            ));
        };
        let token = pairs
            .iter()
            .find(|(k, _)| k == "_csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if !csrf_ok(token, &user, &parts.headers) {
            tracing::warn!(path = %path, "dashboard form refused: CSRF token or origin");
            return Err(csrf_refused(None).into_response());
        }
        let form = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|e| {
            PageError::from(AppError::invalid(format!("表单内容不完整：{e}"))).into_response()
        })?;
        Ok(Posted { user, form })
    }
}

/// True when a posted form's token is the session's and the browser, when it names the page
/// the form came from (`Origin`), names this server. For forms read without [`Posted`] (file
/// uploads).
pub(super) fn csrf_ok(token: &str, user: &DashUser, headers: &axum::http::HeaderMap) -> bool {
    same(token, &user.csrf) && same_origin(headers)
}

/// The refusal of a form without the right token: nothing was changed.
pub(super) fn csrf_refused(back: Option<String>) -> PageError {
    PageError {
        status: StatusCode::FORBIDDEN,
        code: "csrf",
        message: "表单校验失败，未做任何改动。".to_string(),
        back,
    }
}

/// When the browser names the page a form came from (`Origin`), it must be this server.
fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// True when the browser reached us over TLS (a proxy that says so; the server's own TLS is
/// `Config::tls`, see [`secure_cookies`]).
fn over_tls(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Cookies are `Secure` whenever the dashboard is served over TLS.
fn secure_cookies(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    state.config().tls || over_tls(headers)
}

fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .build()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    css: &'static str,
    notice: Option<&'a str>,
    login_csrf: &'a str,
    next: &'a str,
    keep: &'a str,
    login: &'a str,
}

/// The login page with a fresh double-submit token.
fn login_form(
    headers: &axum::http::HeaderMap,
    status: StatusCode,
    notice: Option<&str>,
    next: &str,
    keep: String,
) -> Response {
    let token = hex::encode(auth::random_bytes(16));
    let page = LoginPage {
        css: assets::name("dashboard.css"),
        notice,
        login_csrf: &token,
        next,
        keep: &keep,
        login: "",
    };
    let jar = CookieJar::new().add(cookie(LOGIN_COOKIE, token.clone(), over_tls(headers)));
    (jar, render(status, &page)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
}

/// `GET /login`.
pub async fn login_page(headers: axum::http::HeaderMap, Query(q): Query<NextQuery>) -> Response {
    login_form(
        &headers,
        StatusCode::OK,
        None,
        &safe_next(q.next.as_deref()),
        String::new(),
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    keep: String,
    #[serde(default)]
    login_csrf: String,
}

#[derive(Template)]
#[template(path = "resubmit.html")]
struct ResubmitPage<'a> {
    css: &'static str,
    action: &'a str,
    fields: Vec<(String, String)>,
    csrf: &'a str,
}

/// `POST /login`: password → session cookie → back where the admin was going; with a kept form,
/// a page to resubmit it.
pub async fn login(
    State(state): State<AppState>,
    crate::guard::ClientAddr(addr): crate::guard::ClientAddr,
    jar: CookieJar,
    headers: axum::http::HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let expected = jar.get(LOGIN_COOKIE).map(|c| c.value().to_string());
    let next = safe_next(form.next.as_deref());
    if expected.is_none_or(|e| !same(&e, &form.login_csrf) || e.is_empty()) {
        return login_form(
            &headers,
            StatusCode::FORBIDDEN,
            Some("登录表单已失效，请重新输入。"),
            &next,
            form.keep,
        );
    }
    let result = auth::login_guarded(&state, addr, form.login.clone(), form.password).await;
    let session = match result {
        Ok(session) => session,
        Err(e) if matches!(e.code, "invalid_credentials" | "too_many_attempts" | "busy") => {
            let notice = match e.code {
                "invalid_credentials" => "账号或密码错误。".to_string(),
                "too_many_attempts" => {
                    format!("尝试次数过多，请 {} 秒后再试。", e.retry_after.unwrap_or(1))
                }
                _ => "服务器正忙，请稍后再试。".to_string(),
            };
            let token = hex::encode(auth::random_bytes(16));
            let page = LoginPage {
                css: assets::name("dashboard.css"),
                notice: Some(&notice),
                login_csrf: &token,
                next: &next,
                keep: &form.keep,
                login: &form.login,
            };
            let jar = jar.add(cookie(LOGIN_COOKIE, token.clone(), over_tls(&headers)));
            let mut response = (jar, render(e.status, &page)).into_response();
            if let Some(seconds) = e.retry_after {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, seconds.into());
            }
            response
                .headers_mut()
                .insert("x-error-code", axum::http::HeaderValue::from_static(e.code));
            return response;
        }
        Err(e) => return PageError::from(e).into_response(),
    };
    let secure = secure_cookies(&state, &headers);
    let csrf = csrf_of(&session.token);
    let jar = jar
        .remove(Cookie::build(LOGIN_COOKIE).path("/"))
        .add(cookie(SESSION_COOKIE, session.token, secure));
    if !form.keep.is_empty() {
        // The kept form came back through a hidden field: if it was tampered with into
        // something undecodable, say so rather than resubmit an empty form.
        let Ok(fields) = serde_urlencoded::from_str::<Vec<(String, String)>>(&form.keep) else {
            return (
                jar,
                PageError::from(AppError::invalid("保留的表单内容无法读取，请重新填写")),
            )
                .into_response();
        };
        let page = ResubmitPage {
            css: assets::name("dashboard.css"),
            action: &next,
            fields,
            csrf: &csrf,
        };
        return (jar, render(StatusCode::OK, &page)).into_response();
    }
    (jar, Redirect::to(&next)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

/// `POST /logout`: the session ends on the server, the cookie is cleared.
pub async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    posted: Posted<Empty>,
) -> PageResult {
    let _ = posted.user;
    if let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) {
        let hash = auth::token_hash(&token);
        super::blocking(&state, move |st| Ok(st.storage().delete_session(&hash)?)).await?;
    }
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to("/login")).into_response())
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage<'a> {
    chrome: super::Chrome,
    notice: Option<&'a str>,
    error: Option<String>,
}

/// `GET /password`: change one's own password.
pub async fn password_page(user: DashUser) -> PageResult {
    let page = PasswordPage {
        chrome: super::Chrome::new(&user, "修改密码", "/password"),
        notice: None,
        error: None,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    repeat: String,
}

/// `POST /password`: the API's change (current password checked and throttled like a login,
/// the policy applied, every other session ended); this browser gets the fresh session.
pub async fn change_password(
    State(state): State<AppState>,
    crate::guard::ClientAddr(addr): crate::guard::ClientAddr,
    headers: axum::http::HeaderMap,
    jar: CookieJar,
    posted: Posted<PasswordForm>,
) -> PageResult {
    let user = posted.user;
    let form = posted.form;
    let refuse = |user: &DashUser, status: StatusCode, message: String| {
        let page = PasswordPage {
            chrome: super::Chrome::new(user, "修改密码", "/password"),
            notice: None,
            error: Some(message),
        };
        render(status, &page)
    };
    if form.new != form.repeat {
        return Ok(refuse(
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            "两次输入的新密码不一致。".into(),
        ));
    }
    let change = auth::PasswordChange {
        current_password: form.current,
        new_password: form.new,
    };
    match auth::change_password_as(&state, &user.session, addr, change).await {
        Ok(session) => {
            let csrf = csrf_of(&session.token);
            let jar = jar.add(cookie(
                SESSION_COOKIE,
                session.token.clone(),
                secure_cookies(&state, &headers),
            ));
            let fresh = DashUser {
                session: AdminSession {
                    account: session.account,
                },
                csrf,
            };
            let page = PasswordPage {
                chrome: super::Chrome::new(&fresh, "修改密码", "/password"),
                notice: Some("密码已修改。其他设备上的登录已全部退出。"),
                error: None,
            };
            Ok((jar, render(StatusCode::OK, &page)).into_response())
        }
        Err(e) => {
            let message = match e.code {
                "invalid_credentials" => "当前密码不正确。".to_string(),
                "too_many_attempts" => {
                    format!("尝试次数过多，请 {} 秒后再试。", e.retry_after.unwrap_or(1))
                }
                "weak_password" => format!("新密码不符合要求：{}", password_rule_zh(&e.message)),
                "busy" => "服务器正忙，请稍后再试。".to_string(),
                _ => return Err(PageError::from(e)),
            };
            let mut response = refuse(&user, e.status, message);
            response
                .headers_mut()
                .insert("x-error-code", axum::http::HeaderValue::from_static(e.code));
            Ok(response)
        }
    }
}

/// The password policy's reasons in Chinese (the policy's messages are English for the API).
pub fn password_rule_zh(message: &str) -> &'static str {
    if message.contains("10 to 128") {
        "长度须为 10–128 个字符。"
    } else if message.contains("only spaces") {
        "不能全是空格。"
    } else if message.contains("one or two different") {
        "不能只由一两个字符重复组成。"
    } else if message.contains("contain the login") {
        "不能包含登录名。"
    } else if message.contains("common passwords") {
        "这是常见密码，容易被猜到。"
    } else {
        "请换一个更难猜的密码。"
    }
}
