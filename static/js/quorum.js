// Small behaviours that need script. No inline script anywhere: the pages can run under a strict CSP.
"use strict";

document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const source = document.querySelector(copy.dataset.copy);
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(() => {
        copy.textContent = "Copied";
      });
    }
  }
  // Close an open project switcher when clicking elsewhere.
  for (const open of document.querySelectorAll("details.switcher[open]")) {
    if (!open.contains(event.target)) open.removeAttribute("open");
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  for (const open of document.querySelectorAll("details.switcher[open]")) {
    open.removeAttribute("open");
    open.querySelector("summary").focus();
  }
});
