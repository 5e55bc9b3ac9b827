// Every figure of the book opens at full size when clicked (figures are drawn at 150 dpi and
// often shown smaller than that). A figure drawn wider than 9 inches (900 px at the 100 dpi of
// the notebooks' inline figures) spans the text column and the margin, as the theme's
// full-width cells do, so that it is shown at more than two thirds of its size.
const WIDE_PX = 900;

function widen(img) {
  const box = img.closest("figure") || img.closest(".cell_output");
  if (box && img.naturalWidth >= WIDE_PX) box.classList.add("pfode-wide");
}

document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.querySelectorAll("main figure img, main .cell_output img")) {
    if (img.complete) widen(img); else img.addEventListener("load", () => widen(img));
    if (img.closest("a")) continue;
    const link = document.createElement("a");
    link.href = img.src;
    link.target = "_blank";
    link.rel = "noopener";
    link.title = "Open the figure at full size";
    img.replaceWith(link);
    link.appendChild(img);
  }
});
