// Forms with data-confirm ask once in a pop-up before they submit; the message may name fields as {field}.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.dataset.confirm || form.dataset.confirmed) return;
  event.preventDefault();
  const dialog = document.getElementById("confirm-dialog");
  const text = form.dataset.confirm.replace(/\{(\w+)\}/g, (_, name) => (form.elements[name] || {}).value || "");
  dialog.querySelector("[data-confirm-message]").textContent = text;
  dialog.querySelector("[data-confirm-ok]").onclick = () => {
    form.dataset.confirmed = "1";
    dialog.close();
    form.requestSubmit();
  };
  dialog.showModal();
});
