// B6: while a batch is checked or processed, poll its progress and reload the page when it ends. Counts
// are written with thousands dots, as everywhere in the app (20.000).
(() => {
  const box = document.querySelector("[data-batch-progress]");
  const running = ["uploaded", "validating", "processing"];
  if (!box || !running.includes(box.dataset.status)) return;
  const bar = box.querySelector("[data-progress-bar]");
  const text = box.querySelector("[data-progress-text]");
  const status = box.querySelector("[data-progress-status]");
  bar.style.width = `${bar.dataset.percent || 0}%`; // the page's figure until the first poll answers
  const dots = (count) => String(count).replace(/\B(?=(\d{3})+(?!\d))/g, ".");
  async function poll() {
    let state;
    try {
      const response = await fetch(box.dataset.batchProgress, { headers: { Accept: "application/json" } });
      if (!response.ok) return setTimeout(poll, 3000);
      state = await response.json();
    } catch {
      return setTimeout(poll, 3000); // offline for a moment: keep polling
    }
    if (!running.includes(state.status)) return window.location.reload();
    const total = state.total_rows || 0;
    const percent = total ? Math.min(100, Math.floor((100 * state.rows_done) / total)) : 0;
    bar.style.width = `${percent}%`;
    if (total) text.textContent = `${dots(state.rows_done)} of ${dots(total)} rows`;
    else text.textContent = state.status === "uploaded" ? "Waiting for a worker" : "Reading the file";
    status.textContent = state.status_label;
    setTimeout(poll, 1000);
  }
  poll();
})();
