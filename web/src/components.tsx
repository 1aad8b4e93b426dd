import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.ts';

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const msg = error instanceof ApiError ? error.message : error instanceof Error ? error.message : String(error);
  const status = error instanceof ApiError && error.status ? ` (HTTP ${error.status})` : '';
  return (
    <p class="error" role="alert">
      {msg}
      <span class="muted">{status}</span>
    </p>
  );
}

export function Notice({ children }: { children: ComponentChildren }) {
  return (
    <p class="notice" role="status">
      {children}
    </p>
  );
}

/** A copy-to-clipboard button that says whether it worked. */
export function CopyButton({ value, label }: { value: string; label: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setState('copied');
    } catch {
      setState('failed');
    }
  };
  return (
    <span class="copy">
      <button type="button" onClick={copy}>
        {label}
      </button>
      <span role="status" class="muted">
        {state === 'copied' ? 'Copied.' : state === 'failed' ? 'Copy failed: select the text and copy it.' : ''}
      </span>
    </span>
  );
}

/** A secret or token shown once: selectable text, copy button. */
export function SecretValue({ id, label, value }: { id: string; label: string; value: string }) {
  return (
    <div class="secret">
      <label for={id}>{label}</label>
      <textarea id={id} data-testid={id} readOnly rows={value.length > 120 ? 5 : 2} value={value} onFocus={(e) => (e.currentTarget as HTMLTextAreaElement).select()} />
      <CopyButton value={value} label={`Copy ${label.toLowerCase()}`} />
    </div>
  );
}

/**
 * A modal confirmation (native <dialog>: focus moves in and is trapped, Escape cancels).
 * `children` states what will happen before the user agrees.
 */
export function Confirm(props: {
  title: string;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => Promise<void> | void;
  onClose: () => void;
  children: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await props.onConfirm();
      props.onClose();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onClose={props.onClose} onCancel={props.onClose}>
      <h2 id="confirm-title">{props.title}</h2>
      <div class="dialog-body">{props.children}</div>
      <ErrorBox error={error} />
      <div class="actions">
        <button type="button" onClick={props.onClose} autofocus>
          Cancel
        </button>
        <button type="button" class={props.danger ? 'danger' : 'primary'} onClick={go} disabled={busy}>
          {props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

/** Checkboxes for modules, with "Select All Module" (the Qualys console's wording). */
export function ModulePicker({ idPrefix, available, value, onChange, legend }: { idPrefix: string; available: string[]; value: string[]; onChange: (v: string[]) => void; legend: string }) {
  const all = available.length > 0 && available.every((m) => value.includes(m));
  return (
    <fieldset class="modules">
      <legend>{legend}</legend>
      <div class="check">
        <input id={`${idPrefix}-all`} type="checkbox" checked={all} onChange={(e) => onChange((e.currentTarget as HTMLInputElement).checked ? [...available] : [])} />
        <label for={`${idPrefix}-all`}>Select All Module</label>
      </div>
      <div class="module-grid">
        {available.map((m) => (
          <div class="check" key={m}>
            <input
              id={`${idPrefix}-${m}`}
              type="checkbox"
              checked={value.includes(m)}
              onChange={(e) => onChange((e.currentTarget as HTMLInputElement).checked ? [...value, m] : value.filter((x) => x !== m))}
            />
            <label for={`${idPrefix}-${m}`}>{m}</label>
          </div>
        ))}
      </div>
      {available.length === 0 && <p class="muted">You have no module permissions to give.</p>}
    </fieldset>
  );
}

/** Load data on mount (and on `reload()`), with loading and error states. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setError(null);
    load().then(
      (d) => live && setData(d),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [n, ...deps]);
  return { data, error, reload: () => setN((x) => x + 1) };
}

export function PageTitle({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  // Move focus to the page heading on navigation so screen readers and keyboards start there.
  useEffect(() => ref.current?.focus(), []);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}

/** A section heading that takes focus when it appears (a secret shown once must not go unnoticed). */
export function FocusHeading({ id, children }: { id: string; children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <h2 id={id} ref={ref} tabIndex={-1}>
      {children}
    </h2>
  );
}
