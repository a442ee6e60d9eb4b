// The Edit menu of a table row (<details class="menu">): opened, its items float above the page at the
// button (position: fixed), so the table's scroll box does not clip them. One menu open at a time; a click
// elsewhere, Escape, scrolling or resizing closes it.
(() => {
  const menus = () => document.querySelectorAll("details.menu[open]");
  const closeAll = (except) => menus().forEach((menu) => { if (menu !== except) menu.open = false; });

  function place(menu) {
    const items = menu.querySelector(".menu-items");
    const button = menu.querySelector("summary").getBoundingClientRect();
    items.classList.add("menu-floating");
    const below = button.bottom + 4;
    const height = items.offsetHeight;
    const top = below + height > window.innerHeight && button.top - height - 4 > 0 ? button.top - height - 4 : below;
    items.style.top = `${top}px`;
    items.style.left = `${Math.min(button.left, window.innerWidth - items.offsetWidth - 8)}px`;
  }

  document.querySelectorAll("details.menu").forEach((menu) => {
    menu.addEventListener("toggle", () => {
      if (!menu.open) return;
      closeAll(menu);
      place(menu);
    });
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest("details.menu")) closeAll();
  });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeAll(); });
  window.addEventListener("resize", () => closeAll());
  document.addEventListener("scroll", () => closeAll(), { capture: true, passive: true });
})();
