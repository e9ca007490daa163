// A modal confirmation dialog on the native <dialog> element: showModal()
// traps focus and makes the page behind it inert, Escape closes it, and
// focus returns to what opened it.
import { useEffect, useRef } from "preact/hooks";
import { html } from "./html.js";

export function Dialog({ title, onClose, children, id = "confirm-dialog" }) {
  const ref = useRef(null);
  useEffect(() => {
    const d = ref.current;
    const opener = document.activeElement;
    d.showModal();
    const onCancel = (e) => {
      e.preventDefault();
      onClose();
    };
    d.addEventListener("cancel", onCancel);
    return () => {
      d.removeEventListener("cancel", onCancel);
      if (d.open) d.close();
      if (opener && opener.isConnected) opener.focus();
    };
  }, []);
  return html`<dialog ref=${ref} id=${id} aria-labelledby=${id + "-title"}>
    <h2 id=${id + "-title"}>${title}</h2>
    ${children}
  </dialog>`;
}
