//! The admin dashboard: zh-CN HTML pages served by the server itself at `/`.
//!
//! Shape: handlers → the same read functions the JSON API calls (`crate::admin`, the
//! projections, core's tally) → askama templates (`server/templates/`, checked at compile time
//! and escaped). No SQL here or in templates. Forms are plain POST + redirect and work with
//! JavaScript off; htmx and `dashboard.js` only enhance them (live counters, the refresh badge).
//!
//! Sessions are the same server sessions the JSON API uses, carried in a cookie
//! (`HttpOnly; SameSite=Strict`, `Secure` when the request came over TLS). Every form carries a
//! CSRF token derived from the session secret; a POST without it is refused. A POST whose
//! session expired gets the login page with the form's fields kept, and after logging in the
//! admin resubmits them with one click.

pub mod assets;
mod drafts;
mod exports;
pub mod format;
mod orders;
pub(crate) mod pages;
mod print;
pub(crate) mod push;
mod register;
mod results;
mod session;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use doorstep_core::model::Role;

use crate::error::AppError;
use crate::state::AppState;

pub use session::DashUser;

/// The dashboard's routes, merged into [`crate::app`] at the root.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route(
            "/password",
            get(session::password_page).post(session::change_password),
        )
        .route("/events", get(pages::events))
        .route("/assets/{name}", get(assets::serve))
        .route("/campaigns", get(pages::campaigns))
        .route("/campaigns/new", get(drafts::new_page).post(drafts::create))
        .route("/campaigns/{id}", get(pages::campaign))
        .route(
            "/campaigns/{id}/edit",
            get(drafts::edit_page).post(drafts::edit),
        )
        .route("/campaigns/{id}/card", get(pages::campaign_card))
        .route(
            "/campaigns/{id}/actions/{action}",
            get(pages::confirm_action).post(pages::run_action),
        )
        .route(
            "/campaigns/{id}/conflicts",
            get(pages::conflicts).post(pages::adjudicate),
        )
        .route("/campaigns/{id}/notice/{form}", get(print::notice))
        .route("/buildings", get(pages::buildings))
        .route("/buildings/{community}/{building}", get(pages::building))
        .route(
            "/buildings/{community}/{building}/units/{unit}",
            get(pages::household),
        )
        .route("/devices", get(pages::devices))
        .route("/devices/{id}/revoke", post(pages::revoke))
        .route("/devices/{id}/release", post(pages::release))
        .route("/held/{id}/accept", post(pages::accept_held))
        .route("/accounts", post(pages::create_account))
        .route("/assignments", post(pages::assign))
        .route("/assignments/remove", post(pages::unassign))
        .route("/accounts/{id}/code", post(pages::issue_code))
        .route("/accounts/{id}/password", post(pages::reset_password))
        .route("/accounts/{id}/grants", post(pages::add_grant))
        .route("/accounts/{id}/grants/remove", post(pages::remove_grant))
        .route("/cards", post(print::card_sheet))
        .route("/audit", get(pages::audit))
        .route("/orders", get(orders::page).post(orders::create))
        .route("/orders/step", post(orders::step))
        .route(
            "/register",
            get(register::page)
                .post(register::upload)
                // The upload handler enforces the configured import limit while reading.
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .merge(exports::router())
    // Security headers are set for every answer, dashboard or not, by `crate::app`.
}

/// One entry of the menu.
#[derive(Debug, Clone)]
pub struct MenuItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What every page's frame shows: the menu for the user's roles, who is logged in, the CSRF
/// token for the forms, and when the data was read.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    pub user: String,
    pub roles: String,
    pub menu: Vec<MenuItem>,
    pub csrf: String,
    pub rendered_at: String,
    pub css: &'static str,
    pub js: &'static str,
    pub htmx: &'static str,
}

/// The screens, with the roles that may open each (in menu order).
const SCREENS: &[(&str, &str, &[Role])] = &[
    ("/", "总览", &[Role::Admin, Role::CountingOfficer]),
    ("/buildings", "楼栋", &[Role::Admin, Role::CountingOfficer]),
    (
        "/campaigns",
        "投票/议题",
        &[Role::Admin, Role::CountingOfficer],
    ),
    ("/orders", "微心愿", &[Role::Admin, Role::Dispatcher]),
    ("/register", "名册", &[Role::Admin]),
    ("/devices", "设备与楼栋长", &[Role::Admin]),
    ("/exports", "导出", &[Role::Admin, Role::CountingOfficer]),
    ("/audit", "审计", &[Role::Admin, Role::CountingOfficer]),
];

/// Chinese name of a role.
pub fn role_zh(role: Role) -> &'static str {
    match role {
        Role::Admin => "管理员",
        Role::CountingOfficer => "计票人",
        Role::Dispatcher => "派单员",
        Role::BuildingHead => "楼栋长",
    }
}

/// An account's roles where it holds them, as the dashboard says it: `管理员 · tpy；计票人 ·
/// 全部小区`.
pub fn grants_zh(grants: &crate::storage::Grants) -> String {
    grants
        .scopes()
        .map(|(scope, roles)| {
            let roles: Vec<&str> = roles.iter().map(|r| role_zh(*r)).collect();
            let place = if scope == crate::storage::EVERYWHERE {
                "全部小区"
            } else {
                scope
            };
            format!("{} · {place}", roles.join("、"))
        })
        .collect::<Vec<_>>()
        .join("；")
}

impl Chrome {
    pub fn new(user: &DashUser, title: impl Into<String>, current: &str) -> Chrome {
        let account = &user.session.account;
        let menu = SCREENS
            .iter()
            .filter(|(_, _, roles)| roles.iter().any(|r| account.is(*r)))
            // The audit chain spans every community: 街道-wide accounts only.
            .filter(|(href, _, _)| {
                *href != "/audit" || crate::admin::exports::reads_street_wide(&user.session)
            })
            .map(|(href, label, _)| MenuItem {
                href,
                label,
                current: *href == current,
            })
            .collect();
        Chrome {
            title: title.into(),
            user: account.display_name.clone(),
            roles: grants_zh(&account.grants),
            menu,
            csrf: user.csrf.clone(),
            rendered_at: format::clock(doorstep_core::model::now_millis()),
            css: assets::name("dashboard.css"),
            js: assets::name("dashboard.js"),
            htmx: assets::name("htmx.min.js"),
        }
    }
}

/// Render a template as an HTML answer; a template that fails to render is an internal error,
/// never an empty page.
pub fn render<T: Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => PageError::from(AppError::internal(e)).into_response(),
    }
}

/// An error shown as a page: the status, the stable code (in the page and in the
/// `x-error-code` header, so tests and scripts match on it), and a Chinese explanation.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Where to go next.
    pub back: Option<String>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    code: &'a str,
    message: &'a str,
    explanation: &'a str,
    back: Option<&'a str>,
    css: &'static str,
}

impl PageError {
    pub fn forbidden() -> PageError {
        PageError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: "您的账号没有打开此页面的权限。".to_string(),
            back: None,
        }
    }

    pub fn with_back(mut self, back: impl Into<String>) -> PageError {
        self.back = Some(back.into());
        self
    }
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> PageError {
        PageError {
            status: e.status,
            code: e.code,
            message: e.message,
            back: None,
        }
    }
}

impl From<tokio::task::JoinError> for PageError {
    fn from(e: tokio::task::JoinError) -> PageError {
        AppError::internal(e).into()
    }
}

/// A Chinese sentence for the refusals an admin can meet on the dashboard.
fn explain(code: &str) -> &'static str {
    match code {
        "forbidden" => "楼栋长请在手机应用中工作；需要管理权限请联系社区管理员。",
        "wrong_status" => {
            "投票只能按 草稿→发布→开始→截止→计票→公示→归档 逐步推进，不能跳步或回退。"
        }
        "open_conflicts" => "还有重复票冲突等待计票人裁决；全部裁决后才能计票。",
        "already_adjudicated" => "另一位计票人已作出裁决。请刷新冲突列表查看结果。",
        "conflict_changed" => "冲突中的选票在您查看后发生了变化，请重新查看后再裁决。",
        "no_conflict" => "这位业主目前没有待裁决的冲突。",
        "not_found" => "找不到这个页面或记录。",
        "invalid_input" => "提交的内容不完整或格式不对，请检查后重试。",
        "csrf" => "表单已失效（可能来自其他网站或页面打开太久），请返回重新提交。",
        _ => "操作未完成，数据没有改动。",
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::FORBIDDEN => "无权访问",
            StatusCode::NOT_FOUND => "未找到",
            StatusCode::CONFLICT => "操作被拒绝",
            s if s.is_server_error() => "服务器出错",
            _ => "无法完成",
        };
        let page = ErrorPage {
            title,
            code: self.code,
            message: &self.message,
            explanation: explain(self.code),
            back: self.back.as_deref(),
            css: assets::name("dashboard.css"),
        };
        let mut response = match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            // The error page itself failed: answer the status and code as plain text.
            Err(_) => (self.status, format!("{} {}", self.status, self.code)).into_response(),
        };
        if let Ok(v) = HeaderValue::from_str(self.code) {
            response.headers_mut().insert("x-error-code", v);
        }
        response
    }
}

/// Result of a page handler.
pub type PageResult<T = Response> = Result<T, PageError>;

/// Run blocking work (storage, documents, argon2) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&AppState) -> Result<T, AppError> + Send + 'static,
) -> PageResult<T> {
    Ok(crate::admin::blocking(state, f).await?)
}
