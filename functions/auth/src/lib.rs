//! `/api/v1/auth/*`: register, login, refresh, logout, me.

pub mod login;
pub mod me;
pub mod register;
pub mod sessions;

shared::http_routes!(
    register::register,
    login::login,
    sessions::refresh,
    sessions::logout,
    me::me,
);
