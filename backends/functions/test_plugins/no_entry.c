/* Test fixture: a shared library that is not a drover plugin (it exports a
 * function, but not drover_plugin_entry). Loading it must fail, naming the
 * file and the missing symbol. */
int not_a_drover_plugin(void) { return 42; }
