// Forms with data-confirm ask once in a pop-up before they submit.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.dataset.confirm || form.dataset.confirmed) return;
  event.preventDefault();
  const dialog = document.getElementById("confirm-dialog");
  dialog.querySelector("[data-confirm-message]").textContent = form.dataset.confirm;
  dialog.querySelector("[data-confirm-ok]").onclick = () => {
    form.dataset.confirmed = "1";
    dialog.close();
    form.requestSubmit();
  };
  dialog.showModal();
});

// A form the server validated comes back with its pop-up open (data-open-on-load); its Confirm is a submit
// button of that form. Cancel closes any confirm pop-up.
const askedAfterValidation = document.querySelector("#confirm-dialog[data-open-on-load]");
if (askedAfterValidation) askedAfterValidation.showModal();
document.addEventListener("click", (event) => {
  const closer = event.target.closest("#confirm-dialog [data-close-dialog]");
  if (closer) closer.closest("dialog").close();
});
