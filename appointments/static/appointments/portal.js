// Counts down a hold or an offer on the page; the server decides, this only shows the time left.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".countdown[data-seconds]").forEach((element) => {
    const end = Date.now() + Number(element.dataset.seconds) * 1000;
    const remaining = element.querySelector(".remaining");
    const tick = () => {
      const left = Math.max(0, Math.round((end - Date.now()) / 1000));
      if (left === 0) {
        element.textContent = element.dataset.expired;
        element.classList.add("expired");
        return;
      }
      remaining.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
      window.setTimeout(tick, 1000);
    };
    tick();
  });
});
