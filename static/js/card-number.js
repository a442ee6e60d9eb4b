// The card number box of a hosted page (<input data-luhn>): a typo is caught on the page by the check digit
// (Luhn) before the form is sent; the server checks it again. Nothing leaves the page from here.
(() => {
  const MESSAGE = "This card number fails the check digit (Luhn): a typo?";

  function luhnValid(digits) {
    let total = 0;
    for (let i = 0; i < digits.length; i += 1) {
      let digit = Number(digits[digits.length - 1 - i]);
      if (i % 2 === 1) {
        digit *= 2;
        if (digit > 9) digit -= 9;
      }
      total += digit;
    }
    return total % 10 === 0;
  }

  function check(input) {
    const digits = input.value.replace(/[\s-]/g, "");
    const bad = digits.length > 0 && (!/^\d{13,19}$/.test(digits) || !luhnValid(digits));
    input.setCustomValidity(bad ? MESSAGE : "");
    const field = input.closest(".field");
    let hint = field && field.querySelector("[data-luhn-hint]");
    if (field && bad && !hint) {
      hint = document.createElement("div");
      hint.className = "field-error";
      hint.dataset.luhnHint = "";
      hint.textContent = MESSAGE;
      field.appendChild(hint);
    }
    if (hint && !bad) hint.remove();
    if (field) field.classList.toggle("has-error", bad);
    return !bad;
  }

  document.querySelectorAll("input[data-luhn]").forEach((input) => {
    input.addEventListener("blur", () => check(input));
    input.form.addEventListener("submit", (event) => {
      if (!check(input)) {
        event.preventDefault();
        input.focus();
      }
    });
  });
})();
