// The public API, and the session that calls it.
//
// Tokens: the access token lives in memory only (a module variable), so nothing persistent
// holds a credential that works on every route. The refresh token is kept in sessionStorage so
// a reload or a new route does not sign the user out; sessionStorage is per tab and is cleared
// when the tab closes, and the server rotates it on every use and revokes the whole family when
// a rotated one is replayed, so a copy taken from one tab stops working once the tab refreshes.
// Both are readable by script in this origin, which the strict CSP (no inline or foreign script)
// is there to keep to our own bundle. An HttpOnly cookie would hide the refresh token from script
// but the API hands tokens out in JSON bodies and the console is a client of that API only.

export type FieldError = { field: string; message: string };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: FieldError[] = [],
    readonly retryAfter?: string,
  ) {
    super(detail || title);
  }

  /** The message for one field (`resources.gpu_count`, `name`, ...), if the API named it. */
  forField(field: string): string | undefined {
    return this.errors.find((e) => e.field === field)?.message;
  }
}

const REFRESH_KEY = "hv.refresh";
let accessToken: string | null = null;
let refreshing: Promise<boolean> | null = null;
const signedOutListeners = new Set<() => void>();

export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

type TokenPair = { access_token: string; refresh_token: string; expires_in: number };

function keep(pair: TokenPair) {
  accessToken = pair.access_token;
  sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
}

function forget() {
  accessToken = null;
  sessionStorage.removeItem(REFRESH_KEY);
}

export function hasSession(): boolean {
  return accessToken !== null || sessionStorage.getItem(REFRESH_KEY) !== null;
}

/** One refresh at a time: concurrent 401s share it (a second use of the same refresh token
 * would count as replay and revoke the family). */
export function refresh(): Promise<boolean> {
  const token = sessionStorage.getItem(REFRESH_KEY);
  if (!token) return Promise.resolve(false);
  refreshing ??= (async () => {
    try {
      const pair = await send<TokenPair>("POST", "/auth/refresh", { refresh_token: token }, { auth: false });
      keep(pair);
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status !== 0) forget();
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export async function login(username: string, password: string): Promise<void> {
  keep(await send<TokenPair>("POST", "/auth/login", { username, password }, { auth: false }));
}

export async function logout(): Promise<void> {
  const token = sessionStorage.getItem(REFRESH_KEY);
  forget();
  if (token) {
    await send("POST", "/auth/logout", { refresh_token: token }, { auth: false }).catch(() => undefined);
  }
  signedOutListeners.forEach((l) => l());
}

type Options = { auth?: boolean; signal?: AbortSignal; headers?: Record<string, string> };

async function send<T>(method: string, path: string, body?: unknown, options: Options = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (options.auth !== false && accessToken) headers.Authorization = `Bearer ${accessToken}`;
  let response: Response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: options.signal,
      credentials: "omit",
    });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    throw new ApiError(0, "The API could not be reached", "Check your connection; the console retries by itself.");
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const p = (parsed ?? {}) as Partial<{ title: string; detail: string; errors: FieldError[] }>;
    throw new ApiError(
      response.status,
      p.title ?? response.statusText ?? "Request failed",
      p.detail ?? "",
      Array.isArray(p.errors) ? p.errors : [],
      response.headers.get("Retry-After") ?? undefined,
    );
  }
  return parsed as T;
}

/** An authenticated call; on 401 it refreshes once and retries, and signs out if that fails. */
export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal, headers?: Record<string, string>): Promise<T> {
  // Signed out (or signing out): nothing to send a request with, so none is sent.
  if (!accessToken && !(await refresh())) {
    signedOutListeners.forEach((l) => l());
    throw new ApiError(401, "Signed out", "Sign in again to continue.");
  }
  try {
    return await send<T>(method, path, body, { signal, headers });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    if (await refresh()) return send<T>(method, path, body, { signal, headers });
    forget();
    signedOutListeners.forEach((l) => l());
    throw err;
  }
}

export const get = <T>(path: string, signal?: AbortSignal) => api<T>("GET", path, undefined, signal);
export const post = <T>(path: string, body?: unknown, headers?: Record<string, string>) => api<T>("POST", path, body ?? {}, undefined, headers);
export const patch = <T>(path: string, body: unknown) => api<T>("PATCH", path, body);
export const del = (path: string) => api<void>("DELETE", path);

export async function register(username: string, email: string, password: string): Promise<void> {
  await send("POST", "/auth/register", { username, email, password }, { auth: false });
}

/** Words for an error, for people: the API's own detail first. */
export function describe(err: unknown): string {
  if (!(err instanceof ApiError)) return err instanceof Error ? err.message : String(err);
  const parts = [err.detail && err.detail !== err.title ? `${err.title}: ${err.detail}` : err.title];
  if (err.status === 429 && err.retryAfter) parts.push(`Try again in ${err.retryAfter} s.`);
  if (err.status === 403) parts.push("Your role in this organization does not allow it.");
  return parts.join(" ");
}
