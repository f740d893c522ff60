def run_training_step(ctx): raise NotImplementedError
run_population = run_training_step
