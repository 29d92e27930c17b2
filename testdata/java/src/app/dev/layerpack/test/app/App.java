package dev.layerpack.test.app;

import dev.layerpack.test.core.Core;

/** The direct dependency of the test layers. */
public final class App {
    private App() {}

    public static String describe() {
        return Core.greet("app");
    }
}
