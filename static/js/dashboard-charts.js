// Draws each <canvas data-chart-url> with Chart.js from its django-chartjs JSON view
// ({type, data, options}) and marks it data-chart-state="drawn" (or "error", with a note instead).
// One request at a time: each saves the session, and the embedded SQLite server takes one writer.
(() => {
  // Chart.js 2 injects a <style> element, which the Content-Security-Policy refuses; the page links
  // Chart.min.css instead.
  Chart.platform.disableCSSInjection = true;
  const draw = async (canvas) => {
    try {
      const response = await fetch(canvas.dataset.chartUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      new Chart(canvas.getContext("2d"), await response.json());
      canvas.dataset.chartState = "drawn";
    } catch (error) {
      console.error("chart", canvas.dataset.chartUrl, error);
      canvas.dataset.chartState = "error";
      const note = document.createElement("p");
      note.className = "muted small";
      note.textContent = "This chart could not be loaded. Reload the page to try again.";
      canvas.replaceWith(note);
    }
  };
  (async () => {
    for (const canvas of document.querySelectorAll("canvas[data-chart-url]")) await draw(canvas);
  })();
})();
