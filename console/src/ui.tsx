// Small building blocks every page uses: data loading, errors in words, labelled fields, links.
import type { ComponentChildren, JSX } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, describe } from "./api";
import { BASE, navigate } from "./router";

/** Loads whenever `deps` change (the live counter among them), keeping the last data on screen
 * while it reloads, and dropping answers that arrive after a newer request was sent. */
export function useData<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const seq = useRef(0);
  const run = useCallback(() => {
    const mine = ++seq.current;
    load().then(
      (data) => mine === seq.current && setState({ data, loading: false }),
      (error) => mine === seq.current && setState((s) => ({ data: s.data, error, loading: false })),
    );
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run };
}

export function Link(props: { to: string; children: ComponentChildren; class?: string; "aria-current"?: "page" | undefined }) {
  const onClick = (e: MouseEvent) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={BASE + props.to} onClick={onClick} class={props.class} aria-current={props["aria-current"]}>
      {props.children}
    </a>
  );
}

/** An API error in words: its title and detail, and each field error. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const fields = error instanceof ApiError ? error.errors : [];
  return (
    <div class="error" role="alert">
      {/* With field errors, the detail only repeats them. */}
      <p>{fields.length > 0 ? "The API did not accept these fields:" : describe(error)}</p>
      {fields.length > 0 && (
        <ul>
          {fields.map((f) => (
            <li key={f.field}>
              <strong>{f.field}</strong>: {f.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

let fieldSeq = 0;

type FieldProps = {
  label: string;
  name: string;
  value: string;
  onInput: (value: string) => void;
  error?: string;
  hint?: string;
  type?: string;
  required?: boolean;
  autocomplete?: string;
  step?: string;
  min?: string;
  max?: string;
  placeholder?: string;
  inputMode?: JSX.HTMLAttributes["inputMode"];
};

/** A labelled input whose error (from the API's field errors) is announced with it. */
export function Field(p: FieldProps) {
  const id = useRef(`f${++fieldSeq}`).current;
  const described = [p.hint ? `${id}-hint` : "", p.error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return (
    <div class={p.error ? "field invalid" : "field"}>
      <label for={id}>{p.label}</label>
      <input
        id={id}
        name={p.name}
        type={p.type ?? "text"}
        value={p.value}
        required={p.required}
        autocomplete={p.autocomplete}
        step={p.step}
        min={p.min}
        max={p.max}
        placeholder={p.placeholder}
        inputMode={p.inputMode}
        aria-invalid={p.error ? "true" : undefined}
        aria-describedby={described || undefined}
        onInput={(e) => p.onInput((e.target as HTMLInputElement).value)}
      />
      {p.hint && (
        <small id={`${id}-hint`} class="hint">
          {p.hint}
        </small>
      )}
      {p.error && (
        <small id={`${id}-error`} class="field-error">
          {p.error}
        </small>
      )}
    </div>
  );
}

export function Select(p: {
  label: string;
  name: string;
  value: string;
  onInput: (value: string) => void;
  options: [string, string][];
  error?: string;
}) {
  const id = useRef(`f${++fieldSeq}`).current;
  return (
    <div class={p.error ? "field invalid" : "field"}>
      <label for={id}>{p.label}</label>
      <select
        id={id}
        name={p.name}
        value={p.value}
        aria-invalid={p.error ? "true" : undefined}
        aria-describedby={p.error ? `${id}-error` : undefined}
        onChange={(e) => p.onInput((e.target as HTMLSelectElement).value)}
      >
        {p.options.map(([value, text]) => (
          <option key={value} value={value}>
            {text}
          </option>
        ))}
      </select>
      {p.error && (
        <small id={`${id}-error`} class="field-error">
          {p.error}
        </small>
      )}
    </div>
  );
}

/** A wide table that scrolls on a narrow screen; focusable so a keyboard can scroll it. */
export function TableBox({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="table-box" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}

export function Page({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Hypervisor`;
  }, [title]);
  return (
    <>
      <div class="page-head">
        <h1 id="page-title" tabIndex={-1} ref={heading}>
          {title}
        </h1>
        {actions}
      </div>
      {children}
    </>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status">
      Loading {what}…
    </p>
  );
}

/** Copies text, and says so; where the clipboard is refused the text stays selectable. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState<string>("");
  return (
    <>
      <button
        type="button"
        class="secondary"
        onClick={() =>
          navigator.clipboard
            .writeText(text)
            .then(() => setDone("Copied"))
            .catch(() => setDone("Select the text and copy it"))
        }
      >
        {label}
      </button>
      <span role="status" class="muted copy-status">
        {done}
      </span>
    </>
  );
}

export function Status({ status }: { status: string }) {
  return <span class={`status status-${status}`}>{status}</span>;
}
