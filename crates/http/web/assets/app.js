// mailbridge web admin: the few behaviours plain HTML lacks. No framework; htmx
// does the partial updates.
"use strict";

document.addEventListener("click", (e) => {
  // Sign-in tabs: show one form, hide the other.
  const tab = e.target.closest("[data-show]");
  if (tab) {
    document.querySelectorAll("[data-show]").forEach((t) => {
      t.classList.toggle("current", t === tab);
      document.getElementById(t.dataset.show).hidden = t !== tab;
    });
  }
});

document.addEventListener("change", (e) => {
  // A "select all" box ticks every row box of its table.
  if (e.target.matches("[data-select-all]")) {
    const table = e.target.closest("table");
    table.querySelectorAll("input[data-row]").forEach((b) => { b.checked = e.target.checked; });
  }
  // Fields shown only for some values of another field: data-when="field=value1,value2".
  if (e.target.form) { applyConditions(e.target.form); }
  updateSelection();
});

function updateSelection() {
  const n = document.querySelectorAll("input[data-row]:checked").length;
  document.querySelectorAll("[data-needs-selection]").forEach((b) => { b.disabled = n === 0; });
  document.querySelectorAll("[data-selection-count]").forEach((c) => {
    c.textContent = n === 0 ? "" : `${n} selected`;
  });
}

function applyConditions(form) {
  form.querySelectorAll("[data-when]").forEach((el) => {
    const show = el.dataset.when.split(";").every((cond) => {
      const [name, values] = cond.split("=");
      const input = form.elements[name];
      if (!input) return true;
      let value = input.value;
      if (input instanceof RadioNodeList || input.length !== undefined && input.tagName !== "SELECT") {
        // a hidden "false" plus a checkbox: the checkbox decides.
        const box = form.querySelector(`input[type=checkbox][name="${name}"]`);
        if (box) value = box.checked ? "true" : "false";
      }
      return values.split(",").includes(value);
    });
    el.hidden = !show;
    el.querySelectorAll("input, select, textarea").forEach((i) => { i.disabled = !show; });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form").forEach(applyConditions);
  updateSelection();
});
document.addEventListener("htmx:afterSwap", () => updateSelection());
