import { useState } from "preact/hooks";
import * as api from "../api";
import { ApiError } from "../api";
import { ErrorBox, Field, Link } from "../ui";

export function SignIn({ onDone }: { onDone: () => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.login(username, password);
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const fieldError = (f: string) => (error instanceof ApiError ? error.forField(f) : undefined);
  return (
    <section class="card auth">
      <h1 id="page-title" tabIndex={-1}>
        Sign in to Hypervisor
      </h1>
      <form onSubmit={submit} noValidate>
        <Field label="Username or email" name="username" value={username} onInput={setUsername} autocomplete="username" required error={fieldError("username")} />
        <Field label="Password" name="password" type="password" value={password} onInput={setPassword} autocomplete="current-password" required error={fieldError("password")} />
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p>
        No account yet? <Link to="/register">Register</Link>
      </p>
    </section>
  );
}

export function Register({ onDone }: { onDone: () => void }) {
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.register(username, email, password);
      await api.login(username, password);
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const fieldError = (f: string) => (error instanceof ApiError ? error.forField(f) : undefined);
  return (
    <section class="card auth">
      <h1 id="page-title" tabIndex={-1}>
        Create an account
      </h1>
      <form onSubmit={submit} noValidate>
        <Field label="Username" name="username" value={username} onInput={setUsername} autocomplete="username" required error={fieldError("username")} />
        <Field label="Email" name="email" type="email" value={email} onInput={setEmail} autocomplete="email" required error={fieldError("email")} />
        <Field
          label="Password"
          name="password"
          type="password"
          value={password}
          onInput={setPassword}
          autocomplete="new-password"
          required
          error={fieldError("password")}
          hint="8 to 128 characters; letters mixed with digits or symbols."
        />
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          {busy ? "Creating…" : "Create account"}
        </button>
      </form>
      <p>
        Already registered? <Link to="/signin">Sign in</Link>
      </p>
    </section>
  );
}
