// B1: a file dropped on (or chosen in) [data-dropzone-area] goes into the form's file input, then the form submits.
document.querySelectorAll("[data-dropzone]").forEach((form) => {
  const area = form.querySelector("[data-dropzone-area]");
  const input = form.querySelector("[data-dropzone-input]");
  const name = form.querySelector("[data-dropzone-name]");
  const show = () => { name.textContent = input.files.length ? input.files[0].name : ""; };
  ["dragenter", "dragover"].forEach((type) => area.addEventListener(type, (event) => {
    event.preventDefault();
    area.classList.add("dragging");
  }));
  ["dragleave", "drop"].forEach((type) => area.addEventListener(type, () => area.classList.remove("dragging")));
  area.addEventListener("drop", (event) => {
    event.preventDefault();
    if (!event.dataTransfer.files.length) return;
    input.files = event.dataTransfer.files;
    show();
    form.requestSubmit();
  });
  input.addEventListener("change", show);
});
