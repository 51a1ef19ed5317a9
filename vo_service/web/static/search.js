// "Select all" boxes of the search page: the only script of the pages, which work
// without it (the boxes stay hidden then; every checkbox can still be ticked).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll("input[data-select-all]")) {
    const name = box.getAttribute("data-select-all");
    const scope = box.closest("fieldset, form");
    const members = () => scope.querySelectorAll(`input[type=checkbox][name="${name}"]`);
    const label = box.closest("label");
    if (label) label.hidden = false;
    box.hidden = false;
    const sync = () => {
      const all = Array.from(members());
      box.checked = all.length > 0 && all.every((m) => m.checked);
      box.indeterminate = !box.checked && all.some((m) => m.checked);
    };
    box.addEventListener("change", () => {
      for (const m of members()) m.checked = box.checked;
    });
    for (const m of members()) m.addEventListener("change", sync);
    sync();
  }
});
