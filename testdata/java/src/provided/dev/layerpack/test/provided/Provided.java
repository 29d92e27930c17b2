package dev.layerpack.test.provided;

/** Provided scope (the runtime has it): must never be in a layer. */
public final class Provided {
    private Provided() {}
}
