// A7: links marked data-step-up open the shared confirmation dialog, which posts code and reason to the link's URL.
document.addEventListener("click", (event) => {
  const trigger = event.target.closest("[data-step-up]");
  const dialog = document.getElementById("step-up-dialog");
  if (trigger && dialog) {
    event.preventDefault();
    const form = dialog.querySelector("form");
    form.reset();
    form.action = trigger.getAttribute("href");
    dialog.querySelector("[data-step-up-title]").textContent = trigger.dataset.title || "Confirm";
    dialog.querySelector("[data-step-up-message]").textContent = trigger.dataset.message || "";
    const amountBox = dialog.querySelector("[data-step-up-amount]");
    const amount = amountBox.querySelector("input");
    amountBox.hidden = !("amount" in trigger.dataset);
    amount.disabled = amountBox.hidden;
    amount.value = trigger.dataset.amount || "";
    dialog.showModal();
    (amountBox.hidden ? form.querySelector("[name=code]") : amount).focus();
  }
  const closer = event.target.closest("[data-close-dialog]");
  if (closer) closer.closest("dialog").close();
});
