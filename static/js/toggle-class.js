// Toggles a class on a target when an element with data-toggle-class is clicked (the mobile menu).
document.addEventListener("click", (event) => {
  const trigger = event.target.closest("[data-toggle-class]");
  if (!trigger) return;
  const target = document.querySelector(trigger.dataset.target || "body");
  target.classList.toggle(trigger.dataset.toggleClass);
});
