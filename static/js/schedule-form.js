// Edit Date (R2, R6): shows the fields of the chosen schedule type and a live preview of the next dates,
// asked from the preview endpoint (data-preview-url) whenever the form changes.
(() => {
  const debounce = (fn, ms) => { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; };

  function setUp(box) {
    const form = box.closest("form");
    const prefix = box.dataset.prefix ? box.dataset.prefix + "-" : "";
    const field = (name) => form.querySelectorAll(`[name="${prefix}${name}"]`);
    const kind = () => { const c = [...field("kind")].find((i) => i.checked); return c ? c.value : ""; };
    const checked = (name) => [...field(name)].filter((i) => i.checked).map((i) => i.value);
    const list = box.querySelector("[data-preview-dates]");
    const error = box.querySelector("[data-preview-error]");
    const description = box.querySelector("[data-preview-description]");

    function showFields() {
      box.querySelectorAll("[data-kinds]").forEach((el) => {
        el.hidden = !el.dataset.kinds.split(" ").includes(kind());
      });
    }

    const refresh = debounce(async () => {
      if (!box.dataset.previewUrl) return;
      const params = new URLSearchParams({ kind: kind() });
      ["days", "weekdays", "months"].forEach((name) => checked(name).forEach((v) => params.append(name, v)));
      const dates = field("dates")[0];
      if (dates) params.set("dates", dates.value.split(/[\s,;]+/).filter(Boolean).join(","));
      const response = await fetch(`${box.dataset.previewUrl}?${params}`, { headers: { Accept: "application/json" } });
      const body = await response.json();
      error.textContent = body.error || "";
      description.textContent = body.description ? `· ${body.description}` : "";
      list.replaceChildren(...(body.dates || []).map((iso) => {
        const li = document.createElement("li");
        li.textContent = new Date(`${iso}T00:00:00`).toLocaleDateString("en-GB", { weekday: "short", day: "numeric", month: "short", year: "numeric" });
        li.dataset.date = iso;
        return li;
      }));
    }, 200);

    form.addEventListener("change", () => { showFields(); refresh(); });
    form.addEventListener("input", (event) => { if (event.target.name === `${prefix}dates`) refresh(); });
    showFields();
  }

  document.querySelectorAll("[data-schedule-form]").forEach(setUp);

  // Registration link: the schedule fields only when the merchant fixes the schedule.
  const fix = document.querySelector('[name="fix_schedule"]');
  const fixed = document.querySelector("[data-fixed-schedule]");
  if (fix && fixed) {
    const sync = () => { fixed.hidden = !fix.checked; };
    fix.addEventListener("change", sync);
    sync();
  }
})();
