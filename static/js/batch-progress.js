// B6: while a batch is validated or processed, poll its progress and reload the page when it ends.
(() => {
  const box = document.querySelector("[data-batch-progress]");
  if (!box || !["uploaded", "validating", "processing"].includes(box.dataset.status)) return;
  const bar = box.querySelector("[data-progress-bar]");
  const text = box.querySelector("[data-progress-text]");
  const status = box.querySelector("[data-progress-status]");
  async function poll() {
    const response = await fetch(box.dataset.batchProgress, { headers: { Accept: "application/json" } });
    if (!response.ok) return setTimeout(poll, 3000);
    const state = await response.json();
    if (!["uploaded", "validating", "processing"].includes(state.status)) return window.location.reload();
    const total = state.total_rows || 0;
    const percent = total ? Math.min(100, Math.round((100 * state.rows_done) / total)) : 0;
    bar.style.width = `${percent}%`;
    text.textContent = total ? `${state.rows_done.toLocaleString()} of ${total.toLocaleString()} rows` : `${state.rows_done.toLocaleString()} rows read`;
    status.textContent = state.status_label;
    setTimeout(poll, 1000);
  }
  poll();
})();
