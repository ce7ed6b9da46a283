// Entry point of the window.
import "@fontsource-variable/inter/wght.css";
import "./styles.css";
import { App } from "./app";

const root = document.getElementById("app");
if (root) {
  const app = new App(root);
  void app.start();
}
