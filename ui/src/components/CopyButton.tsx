/** Copies `text` to the clipboard and says so for two seconds. */
import { useEffect, useState } from "react";
import { Icon } from "./Icon";

async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Plain http on a non-localhost name has no Clipboard API: fall back to a selection.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

export function CopyButton({
  text,
  label = "Copy",
  className = "btn btn-secondary btn-small",
  ariaLabel,
  iconOnly = false,
}: {
  text: string;
  label?: string;
  className?: string;
  ariaLabel?: string;
  /** Only the icon; the state is announced, not shown as text. */
  iconOnly?: boolean;
}) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => {
    if (state === "idle") return;
    const timer = setTimeout(() => setState("idle"), 2000);
    return () => clearTimeout(timer);
  }, [state]);
  return (
    <button
      type="button"
      className={state === "copied" ? `${className} copied` : className}
      aria-label={ariaLabel}
      title={iconOnly ? ariaLabel : undefined}
      onClick={async () => setState((await copyText(text)) ? "copied" : "failed")}
    >
      <Icon name={state === "copied" ? "check" : "copy"} />
      <span aria-live="polite" className={iconOnly ? "visually-hidden" : undefined}>
        {state === "copied" ? "Copied" : state === "failed" ? "Select and copy" : label}
      </span>
    </button>
  );
}
